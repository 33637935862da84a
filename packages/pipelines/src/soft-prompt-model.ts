import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX, Module, buildLmInputs, causalLmLoss, type LmInputs } from '@vlm/core';
import { generate, preprocessImages, type CausalLM, type ImageInput, type LMTokenizer, type VisionEncoder } from '@vlm/frozen-loaders';
import type { SavedBridge } from './bridge-checkpoint';

/** Constructor arguments shared by the soft-prompt models ({@link Blip2}, {@link Llava}). */
export interface SoftPromptModelArgs {
  /** The frozen vision encoder (not owned unless `ownParts`). */
  vision: VisionEncoder;
  /** The frozen decoder LM (not owned unless `ownParts`). Freeze it yourself or let the loaders do it. */
  lm: CausalLM;
  /**
   * The LM id of the image placeholder (`<image>`; Hugging Face's `image_token_index`): each one
   * in a text prompt stands for one image and becomes `numVisualTokens` placeholders whose
   * embeddings are replaced by the image's soft prompt. Without it, the soft prompts of a row's
   * images are prepended to its text (LAVIS' layout, one image per row).
   */
  imageTokenId?: number;
  /** Tokenizer for string prompts and decoded text. Default: none (token ids only). */
  tokenizer?: LMTokenizer;
  /** `dispose()` also disposes `vision` and `lm`. Default: `false`. */
  ownParts?: boolean;
}

/** The images of a batch: decoded images per row, or pixels / vision tokens as a tensor. */
export type BatchImages = readonly (readonly ImageInput[])[] | tf.Tensor;

/** Inputs of {@link SoftPromptModel.lmInputs}, {@link SoftPromptModel.forward} and {@link SoftPromptModel.loss}. */
export interface SoftPromptInputs {
  /** Vision tokens of each row's images: `[batch, images, tokens, width]`, or `[batch, tokens, width]` for one image per row. */
  visionTokens: tf.Tensor;
  /**
   * int32 `[batch, T]`: with an `imageTokenId`, each row holds `images · numVisualTokens`
   * placeholder ids where its soft prompts go (see {@link SoftPromptModel.expandImageTokens});
   * without, the text that follows the prepended soft prompts.
   */
  inputIds: tf.Tensor;
  /** `[batch, T]`, 1 = real token. Default: all ones. */
  attentionMask?: tf.Tensor;
  /** Leading real text tokens per row that get no loss (the prompt or instruction). Default: `0`. */
  promptLength?: number | readonly number[];
  /**
   * int32 `[batch, T]`, aligned with `inputIds`: the ids {@link SoftPromptModel.loss} predicts where
   * they differ from the ids the LM reads (teacher forcing with some context words swapped, as
   * Hugging Face's `labels`). Soft-prompt, prompt and padding positions get no loss whatever they
   * hold. Default: `inputIds`.
   */
  labels?: tf.Tensor;
}

/** What {@link SoftPromptModel.generate} takes. */
export interface SoftPromptGenerateArgs {
  /** Each row's images (in the order of its `<image>` markers), pixels `[batch, images, ...encoderInput]`, or vision tokens with `visionTokens: true`. */
  images: BatchImages;
  /** `images` holds vision tokens `[batch, images, tokens, width]`. Default: `false`. */
  visionTokens?: boolean;
  /**
   * Text prompts (one, or one per row), where `<image>` marks each image (rows without a marker
   * get one per image in front), or token ids `[batch, T]` already holding the placeholders.
   */
  prompt: string | readonly string[] | tf.Tensor;
  /** `[batch, T]` with token-id prompts. Default: all ones. */
  attentionMask?: tf.Tensor;
  /** Most new tokens. Default: `20`. */
  maxNewTokens?: number;
  /** A row stops after one of these. Default: none. */
  stopTokenIds?: number[];
  /** Also return each step's logits. Default: `false`. */
  returnStepLogits?: boolean;
}

/** What {@link SoftPromptModel.generate} returns. */
export interface SoftPromptGenerateResult {
  /** The prompt ids (with placeholders) followed by the new tokens, one row per prompt. */
  sequences: number[][];
  /** Only the new tokens of each row. */
  newTokens: number[][];
  /** With `returnStepLogits`: `[batch, steps, vocab]` (the caller disposes it). */
  stepLogits?: tf.Tensor3D;
  /** With a tokenizer: the new tokens decoded (special tokens skipped), one string per row. */
  text?: string[];
}

/**
 * The common shape of BLIP-2 and LLaVA: a frozen encoder, a bridge that maps an image's vision
 * tokens to `numVisualTokens` vectors in the LM's embedding space (the soft visual prompt), and
 * a frozen LM that reads them in place of placeholder tokens. Subclasses give the bridge
 * ({@link SoftPromptModel.softPrompt}); everything else (input assembly with `buildLmInputs`,
 * loss with `causalLmLoss`, generation, interleaved few-shot prompts) is shared.
 */
export abstract class SoftPromptModel extends Module {
  /** The frozen vision encoder. */
  readonly vision: VisionEncoder;
  /** The frozen decoder LM. */
  readonly lm: CausalLM;
  /** The LM id of the image placeholder, if the model uses placeholders. */
  readonly imageTokenId: number | undefined;
  /** The tokenizer, if given. */
  readonly tokenizer: LMTokenizer | undefined;
  private readonly ownParts: boolean;

  constructor(args: SoftPromptModelArgs) {
    super();
    this.vision = args.vision;
    this.lm = args.lm;
    this.imageTokenId = args.imageTokenId;
    this.tokenizer = args.tokenizer;
    this.ownParts = args.ownParts ?? false;
  }

  /** How many soft-prompt vectors one image becomes. */
  abstract get numVisualTokens(): number;

  /** The bridge: vision tokens `[N, tokens, width]` → soft prompt `[N, numVisualTokens, lmEmbedDim]`. */
  abstract softPrompt(visionTokens: tf.Tensor): tf.Tensor;

  /** The trained bridge's weights (PyTorch names) and config; see {@link SavedBridge}. */
  abstract saveBridge(): SavedBridge;

  /** Loads a saved bridge (from `saveBridge`) into this model, strictly. */
  abstract loadBridge(saved: SavedBridge | Uint8Array): void;

  /** The frozen encoder on pixels `[N, ...encoderInput]` → vision tokens `[N, tokens, width]`. */
  encodeImages(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.vision.encode(pixels));
  }

  /**
   * Token rows with every `imageTokenId` replaced by `numVisualTokens` copies (what Hugging
   * Face's `Blip2Processor` does with its `num_query_tokens`); rows with none get one block per
   * image in front (`images` per row).
   */
  expandImageTokens(rows: readonly (readonly number[])[], images: number): number[][] {
    const id = this.imageTokenId;
    if (id === undefined) return rows.map((r) => [...r]);
    const q = this.numVisualTokens;
    return rows.map((row) => {
      const markers = row.filter((v) => v === id).length;
      if (markers === 0) return [...new Array<number>(q * images).fill(id), ...row];
      if (markers !== images) throw new Error(`${this.constructor.name}: a prompt has ${markers} <image> marker(s) for ${images} image(s)`);
      return row.flatMap((v) => (v === id ? new Array<number>(q).fill(id) : [v]));
    });
  }

  /**
   * The frozen LM's inputs: the soft prompts of each row's images placed at its placeholders
   * (or prepended), the attention mask, and labels with -100 on the soft prompt, prompt and
   * padding positions (core's `buildLmInputs`). New tensors owned by the caller.
   */
  lmInputs(inputs: SoftPromptInputs): LmInputs {
    const { visionTokens, inputIds, attentionMask, promptLength } = inputs;
    if (visionTokens.rank !== 3 && visionTokens.rank !== 4) {
      throw new Error(`${this.constructor.name}: visionTokens: expected [batch, images, tokens, width] or [batch, tokens, width], got [${visionTokens.shape}]`);
    }
    const b = visionTokens.shape[0]!;
    if (inputIds.shape[0] !== b) throw new Error(`${this.constructor.name}: inputIds: expected ${b} rows (one per image row), got ${inputIds.shape[0]}`);
    const visual = tf.tidy(() => {
      const v4 = visionTokens.rank === 3 ? tf.expandDims(visionTokens, 1) : visionTokens;
      const [, k, n, d] = v4.shape as [number, number, number, number];
      const p = this.softPrompt(tf.reshape(v4, [b * k, n, d])); // [b·k, Q, D]
      return tf.reshape(p, [b, k * p.shape[1]!, p.shape[2]!]); // [b, k·Q, D]
    });
    const embeds = this.lm.embedTokens(inputIds);
    try {
      return this.imageTokenId === undefined
        ? buildLmInputs({ layout: 'lavis', visualEmbeds: visual, inputIds, inputsEmbeds: embeds, attentionMask, promptLength })
        : buildLmInputs({ layout: 'hf', visualEmbeds: visual, inputIds, inputsEmbeds: embeds, attentionMask, promptLength, imageTokenIndex: this.imageTokenId });
    } finally {
      tf.dispose([visual, embeds]);
    }
  }

  /** Logits `[batch, L, vocab]` of the frozen LM on the assembled inputs. */
  forward(inputs: SoftPromptInputs): tf.Tensor {
    return tf.tidy(() => {
      const { inputsEmbeds, attentionMask } = this.lmInputs(inputs);
      return this.lm.forward({ inputsEmbeds, attentionMask }).logits;
    });
  }

  /** The shifted causal LM loss on the text after the prompt (BLIP-2 stages 2 and 3; LLaVA). */
  loss(inputs: SoftPromptInputs): tf.Scalar {
    const given = inputs.labels;
    if (given) {
      if (given.dtype !== 'int32' || given.rank !== 2 || given.shape[0] !== inputs.inputIds.shape[0] || given.shape[1] !== inputs.inputIds.shape[1]) {
        throw new Error(`${this.constructor.name}.loss: labels: expected int32 [${inputs.inputIds.shape}] (aligned with inputIds), got ${given.dtype} [${given.shape}]`);
      }
    }
    return tf.tidy(() => {
      const { inputsEmbeds, attentionMask, labels } = this.lmInputs(inputs);
      // the built labels are -100 where nothing is predicted; elsewhere they take the given ids
      // (prepended soft prompts, layout 'lavis', shift the text by the labels' extra columns)
      const target = given ? tf.where(tf.equal(labels, IGNORE_INDEX), labels, tf.pad(given, [[0, 0], [labels.shape[1] - given.shape[1]!, 0]], IGNORE_INDEX)) : labels;
      return causalLmLoss(this.lm.forward({ inputsEmbeds, attentionMask }).logits, target);
    });
  }

  /**
   * Greedy generation from images and a prompt: the prompt's `<image>` markers (or the front
   * of the row) get each image's soft prompt.
   *
   * @example
   * ```ts
   * model.generate({ images: [[photo]], prompt: 'Question: what colour is the shape? Answer:', maxNewTokens: 3 }).text; // ['red']
   * ```
   */
  generate(args: SoftPromptGenerateArgs): SoftPromptGenerateResult {
    const name = `${this.constructor.name}.generate`;
    let inputIds: tf.Tensor2D;
    let mask: tf.Tensor2D;
    const rowsOfImages = args.images instanceof tf.Tensor ? args.images.shape[0]! : args.images.length;
    const perRow = args.images instanceof tf.Tensor ? (args.visionTokens && args.images.rank === 3 ? 1 : args.images.shape[1]!) : (args.images[0]?.length ?? 0);
    if (perRow === 0) throw new Error(`${name}: expected at least one image per row, got none`);
    if (args.prompt instanceof tf.Tensor) {
      inputIds = tf.cast(args.prompt, 'int32') as tf.Tensor2D;
      mask = (args.attentionMask ? tf.cast(args.attentionMask, 'int32') : tf.onesLike(inputIds)) as tf.Tensor2D;
    } else {
      if (!this.tokenizer) throw new Error(`${name}: a text prompt needs a tokenizer (pass token ids, or give the model a tokenizer)`);
      const texts = typeof args.prompt === 'string' ? new Array<string>(rowsOfImages).fill(args.prompt) : [...args.prompt];
      const rows = this.expandImageTokens(texts.map((t) => this.tokenizer!.encode(t)), perRow);
      const width = Math.max(...rows.map((r) => r.length));
      const pad = this.lm.info.padTokenId ?? 0;
      inputIds = tf.tensor2d(rows.map((r) => [...new Array<number>(width - r.length).fill(pad), ...r]), [rows.length, width], 'int32');
      mask = tf.tensor2d(rows.map((r) => [...new Array<number>(width - r.length).fill(0), ...r.map(() => 1)]), [rows.length, width], 'int32');
    }
    try {
      if (inputIds.shape[0] !== rowsOfImages) throw new Error(`${name}: images: expected ${inputIds.shape[0]} rows (one per prompt), got ${rowsOfImages}`);
      const lmIn = tf.tidy(() => {
        const tokens = this.visionTokensOf(args.images, args.visionTokens ?? false);
        const { inputsEmbeds, attentionMask, labels } = this.lmInputs({ visionTokens: tokens, inputIds, attentionMask: mask });
        labels.dispose();
        return { inputsEmbeds, attentionMask };
      });
      try {
        const out = generate(this.lm, {
          inputIds: this.imageTokenId === undefined ? undefined : inputIds,
          inputsEmbeds: lmIn.inputsEmbeds,
          attentionMask: lmIn.attentionMask,
          maxNewTokens: args.maxNewTokens ?? 20,
          stopTokenIds: args.stopTokenIds,
          returnStepLogits: args.returnStepLogits,
        });
        const text = this.tokenizer ? out.newTokens.map((row) => this.tokenizer!.decode(row, { skipSpecialTokens: true }).trim()) : undefined;
        return { ...out, text };
      } finally {
        tf.dispose([lmIn.inputsEmbeds, lmIn.attentionMask]);
      }
    } finally {
      tf.dispose([inputIds, mask]);
    }
  }

  /** Frees the bridge (and the encoder and LM when the model owns them). */
  override dispose(): void {
    super.dispose();
    if (this.ownParts) {
      this.lm.dispose();
      this.vision.dispose();
    }
  }

  /** Vision tokens `[batch, images, tokens, width]` of `images`. */
  protected visionTokensOf(images: BatchImages, encoded: boolean): tf.Tensor {
    if (images instanceof tf.Tensor) {
      if (encoded) return images.rank === 3 ? tf.expandDims(images, 1) : tf.clone(images);
      const [b, k, ...rest] = images.shape as number[];
      const tokens = this.vision.encode(tf.reshape(images, [b! * k!, ...rest]));
      return tf.reshape(tokens, [b!, k!, tokens.shape[1], tokens.shape[2]]);
    }
    const k = images[0]!.length;
    if (images.some((row) => row.length !== k)) throw new Error(`${this.constructor.name}: expected the same number of images in every row, got [${images.map((r) => r.length)}]`);
    const tokens = this.vision.encode(preprocessImages(images.flat(), this.vision.preprocessing));
    return tf.reshape(tokens, [images.length, k, tokens.shape[1], tokens.shape[2]]);
  }
}
