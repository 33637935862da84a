import * as tf from '@tensorflow/tfjs-core';
import type { StateDict } from '@vlm/core';
import { loadBlip2VisionModel, loadDecoderLMSync, readCheckpointWeights, type HfCheckpoint } from '@vlm/frozen-loaders';
import {
  QFormer,
  QFormerStage1,
  itcSimilarity,
  l2Normalize,
  qformerFromHfBlip2,
  qformerStateDictFromHf,
  qformerStateDictToHf,
  type QFormerArgs,
  type QFormerStage1Args,
  type QFormerStage1Losses,
} from '@vlm/qformer';
import type { SavedBridge } from './bridge-checkpoint';
import { packBridge, withBridgeTensors } from './bridge-weights';
import { SoftPromptModel, type SoftPromptModelArgs } from './soft-prompt-model';

/** A BLIP-2 bridge's config, as {@link Blip2.saveBridge} writes it. */
export interface Blip2BridgeConfig {
  /** The Q-Former's constructor arguments (`llmHiddenSize` set: it has the language projection). */
  qformer: QFormerArgs;
  /** The stage-1 heads' arguments (`embedDim`, `temperature`, …), when the bridge has them. */
  stage1?: Omit<QFormerStage1Args, keyof QFormerArgs>;
  /** The LM's image placeholder id, if the model places soft prompts at placeholders. */
  imageTokenId?: number;
  /** Frames (views) per image, each read by the Q-Former on its own (see {@link Blip2Args.framesPerImage}); absent = 1. */
  framesPerImage?: number;
  /** The queries are split among the frames ({@link Blip2Args.splitQueries}); absent = false. */
  splitQueries?: boolean;
}

/** Constructor arguments of {@link Blip2}. */
export interface Blip2Args extends SoftPromptModelArgs {
  /**
   * The Q-Former with its language projection (`llmHiddenSize` = the LM's embedding width), or
   * its arguments. Owned by the model.
   */
  qformer: QFormer | QFormerArgs;
  /**
   * Stage-1 heads (ITC `vision_proj`/`text_proj`, ITM `itm_head`, ITG `cls`, `temp`) around the
   * same Q-Former: pass their arguments to train stage 1 (`stage1Losses`) and to measure
   * image–text retrieval. The Q-Former is then built with its text branch. Default: none.
   */
  stage1?: Omit<QFormerStage1Args, keyof QFormerArgs>;
  /**
   * Each image's vision tokens are this many frames one after the other (a clip's frames, or
   * views of one image as a `MultiViewVisionEncoder` gives them), and the Q-Former reads each
   * frame on its own: its query outputs side by side make a soft prompt of
   * `framesPerImage · numQueryTokens` vectors (InstructBLIP reads a video's frames this way).
   * Stage 1, retrieval and the probe's query outputs read the frames the same way. Default: `1`.
   */
  framesPerImage?: number;
  /**
   * With `framesPerImage`: split the `numQueryTokens` queries among the frames instead of giving
   * each frame all of them (group `f` of `numQueryTokens / framesPerImage` queries reads frame `f`
   * only; see `QFormerInputs.splitQueries`): the soft prompt stays `numQueryTokens` vectors.
   * Default: `false`.
   */
  splitQueries?: boolean;
}

/** Recall@1 of image–text retrieval (fractions in [0, 1]). */
export interface RetrievalRecall {
  /** Image → text: the right caption has the highest similarity among all captions. */
  i2t_r1: number;
  /** Text → image: the right image has the highest similarity among all images. */
  t2i_r1: number;
}

/**
 * A whole BLIP-2 model (Li et al. 2023; Hugging Face `Blip2ForConditionalGeneration`): a frozen
 * vision encoder, the Q-Former (learned queries cross-attending to the vision tokens) and its
 * language projection, which make each image a soft visual prompt of `numQueryTokens` vectors
 * for a frozen decoder LM.
 *
 * The three training stages: stage 1 trains the Q-Former against the encoder with ITC + ITM
 * (hard negatives) + ITG ({@link Blip2.stage1Losses}, given `stage1` heads); stage 2 trains the
 * projection (and Q-Former) through the frozen LM ({@link SoftPromptModel.loss}); stage 3 is the
 * same loss with instruction prompts ("Question: … Answer:") as `promptLength`.
 *
 * Saved bridges use Hugging Face's names (`query_tokens`, `qformer.*`, `language_projection.*`),
 * plus LAVIS' `vision_proj.*`, `text_proj.*`, `itm_head.*`, `cls.*`, `temp` for stage-1 heads.
 *
 * @example
 * ```ts
 * const blip2 = Blip2.fromHuggingFace(await readHfCheckpointDir('blip2-opt-2.7b'), { tokenizer });
 * blip2.generate({ images: [[image]], prompt: 'Question: what is in the picture? Answer:' }).text;
 * ```
 */
export class Blip2 extends SoftPromptModel {
  /** The Q-Former and its language projection (trained). */
  readonly qformer: QFormer;
  /** Stage-1 heads around {@link Blip2.qformer}, if built with `stage1`. */
  readonly stage1: QFormerStage1 | undefined;
  /** Frames per image, each read by the Q-Former on its own ({@link Blip2Args.framesPerImage}). */
  readonly framesPerImage: number;
  /** Whether the queries are split among the frames ({@link Blip2Args.splitQueries}). */
  readonly splitQueries: boolean;
  private readonly stage1Args: Blip2Args['stage1'];

  constructor(args: Blip2Args) {
    super(args);
    const frames = args.framesPerImage ?? 1;
    if (!Number.isInteger(frames) || frames < 1) throw new Error(`Blip2: framesPerImage must be a positive integer, got ${String(args.framesPerImage)}`);
    if (Number.isFinite(args.vision.numTokens) && args.vision.numTokens % frames !== 0) {
      throw new Error(`Blip2: the vision encoder's ${args.vision.numTokens} tokens per image do not split into framesPerImage ${frames} frames`);
    }
    this.framesPerImage = frames;
    this.splitQueries = args.splitQueries ?? false;
    if (args.stage1) {
      if (args.qformer instanceof QFormer) throw new Error('Blip2: with stage1 heads, pass the Q-Former as arguments (the heads build it with its text branch)');
      this.stage1 = this.registerModule('stage1', new QFormerStage1({ ...args.qformer, ...args.stage1 }));
      this.qformer = this.stage1.qformer;
    } else {
      this.stage1 = undefined;
      this.qformer = this.registerModule('qformer', args.qformer instanceof QFormer ? args.qformer : new QFormer(args.qformer));
    }
    this.stage1Args = args.stage1;
    const width = this.qformer.args.llmHiddenSize;
    const embedDim = this.lm.info.embedDim;
    if (width !== embedDim) throw new Error(`Blip2: the Q-Former's language projection must output the LM's embedding width ${embedDim}, got llmHiddenSize ${width}`);
    if (this.splitQueries && this.qformer.args.numQueryTokens % frames !== 0) {
      throw new Error(`Blip2: splitQueries needs the Q-Former's numQueryTokens (${this.qformer.args.numQueryTokens}) to be a multiple of framesPerImage (${frames})`);
    }
    if (this.qformer.args.encoderHiddenSize !== this.vision.tokenWidth) {
      throw new Error(`Blip2: the Q-Former's encoderHiddenSize (${this.qformer.args.encoderHiddenSize}) must equal the vision token width (${this.vision.tokenWidth})`);
    }
  }

  /**
   * Loads a Hugging Face `Blip2ForConditionalGeneration` checkpoint (`config.json` and its
   * safetensors): `vision_model.*` into the EVA ViT, `query_tokens` / `qformer.*` /
   * `language_projection.*` into the Q-Former, `language_model.*` into the frozen LM (OPT, or
   * any decoder the loaders know). Soft prompts go at the `image_token_index` placeholders;
   * configs without one (legacy) prepend them.
   *
   * @example
   * ```ts
   * const blip2 = Blip2.fromHuggingFace({ config: readFileSync('config.json', 'utf8'), weights: readFileSync('model.safetensors') });
   * ```
   */
  static fromHuggingFace(
    checkpoint: HfCheckpoint,
    options: {
      /** Tokenizer for string prompts. */
      tokenizer?: SoftPromptModelArgs['tokenizer'];
    } = {},
  ): Blip2 {
    const config = (typeof checkpoint.config === 'string' ? JSON.parse(checkpoint.config) : checkpoint.config) as Record<string, unknown>;
    if (typeof config.text_config !== 'object' || config.text_config === null) throw new Error('Blip2.fromHuggingFace: config.json has no text_config');
    const imageTokenIndex = (config.image_token_index ?? config.image_token_id) as number | undefined;
    const vision = loadBlip2VisionModel({ config, weights: checkpoint.weights });
    let lm: ReturnType<typeof loadDecoderLMSync> | undefined;
    let qformer: QFormer | undefined;
    try {
      const tensors: StateDict = readCheckpointWeights(checkpoint.weights, { filter: (k) => !k.startsWith('vision_model.') && !k.startsWith('language_model.') });
      try {
        qformer = qformerFromHfBlip2(config, tensors);
      } finally {
        tf.dispose(Object.values(tensors));
      }
      lm = loadDecoderLMSync({ config: config.text_config, weights: checkpoint.weights, keyPrefix: 'language_model.' });
      return new Blip2({ vision, lm, qformer, imageTokenId: imageTokenIndex, tokenizer: options.tokenizer, ownParts: true });
    } catch (e) {
      qformer?.dispose();
      lm?.dispose();
      vision.dispose();
      throw e;
    }
  }

  /** Soft-prompt vectors per image: the Q-Former's query count, times {@link Blip2.framesPerImage} unless the queries are split among the frames. */
  get numVisualTokens(): number {
    return this.qformer.numQueryPositions(this.framesPerImage, this.splitQueries);
  }

  /** Vision tokens `[N, M, E]` → projected query outputs `[N, numVisualTokens, lmEmbedDim]`. */
  softPrompt(visionTokens: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const out = this.qformer.encode({ imageEmbeds: visionTokens, mode: 'query', numFrames: this.framesPerImage, splitQueries: this.splitQueries });
      if (!out.projected) throw new Error('Blip2: the Q-Former has no language projection (build it with llmHiddenSize)');
      return out.projected;
    });
  }

  /**
   * The query outputs `[N, numVisualTokens, hiddenSize]` (before the projection; frame by frame
   * with `framesPerImage`): what the Q-Former probe compares across queries and images.
   */
  queryOutputs(visionTokens: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const out = this.qformer.encode({ imageEmbeds: visionTokens, mode: 'query', numFrames: this.framesPerImage, splitQueries: this.splitQueries });
      return out.queryOutput ?? out.lastHiddenState;
    });
  }

  /**
   * BLIP-2 stage 1: ITC + ITM (hard negatives) + ITG on vision tokens `[b, M, E]` and
   * BERT-style captions (`[CLS]` first) `[b, T]` in the Q-Former's own vocabulary.
   */
  stage1Losses(inputs: {
    /** `[b, M, E]`, `b >= 2`. */
    visionTokens: tf.Tensor;
    /** int32 `[b, T]`. */
    inputIds: tf.Tensor;
    /** `[b, T]`. */
    attentionMask?: tf.Tensor;
    /** Hard-negative sampling seed of this call. */
    seed?: number;
  }): QFormerStage1Losses {
    if (!this.stage1) throw new Error('Blip2.stage1Losses: this model has no stage-1 heads (build it with stage1: {...})');
    return this.stage1.losses({ imageEmbeds: inputs.visionTokens, inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, seed: inputs.seed, numFrames: this.framesPerImage, splitQueries: this.splitQueries });
  }

  /**
   * Image–text retrieval with the stage-1 ITC features: row `i` of `visionTokens` matches row
   * `i` of `inputIds`. Similarity = max over queries of the cosine between `vision_proj(query)`
   * and `text_proj([CLS])`, as BLIP-2's retrieval ranking before ITM re-ranking.
   */
  retrieval(inputs: {
    /** `[n, M, E]`. */
    visionTokens: tf.Tensor;
    /** int32 `[n, T]` captions in the Q-Former's vocabulary. */
    inputIds: tf.Tensor;
    /** `[n, T]`. */
    attentionMask?: tf.Tensor;
  }): RetrievalRecall {
    const heads = this.stage1;
    if (!heads) throw new Error('Blip2.retrieval: this model has no stage-1 heads (build it with stage1: {...})');
    const sim = tf.tidy(() => {
      const img = this.qformer.encode({ imageEmbeds: inputs.visionTokens, mode: 'query', numFrames: this.framesPerImage, splitQueries: this.splitQueries });
      const imageFeats = l2Normalize(heads.visionProj.forward(img.queryOutput ?? img.lastHiddenState)); // [n, Q, e]
      const txt = this.qformer.encode({ inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, mode: 'text' });
      const cls = tf.squeeze(tf.slice(txt.lastHiddenState, [0, 0, 0], [-1, 1, -1]), [1]);
      const textFeat = l2Normalize(heads.textProj.forward(cls)); // [n, e]
      return itcSimilarity(imageFeats, textFeat); // [n images, n texts]
    });
    const m = sim.arraySync() as number[][];
    sim.dispose();
    const n = m.length;
    let i2t = 0;
    let t2i = 0;
    for (let i = 0; i < n; i++) {
      if (argmax(m[i]!) === i) i2t++;
      if (argmax(m.map((row) => row[i]!)) === i) t2i++;
    }
    return { i2t_r1: i2t / n, t2i_r1: t2i / n };
  }

  /** The bridge (Q-Former, projection, stage-1 heads if any) under Hugging Face / LAVIS names, with its config. */
  saveBridge(): SavedBridge<Blip2BridgeConfig> {
    const qformer: QFormerArgs = { ...this.qformer.args };
    const config: Blip2BridgeConfig = {
      qformer,
      ...(this.stage1Args ? { stage1: { ...this.stage1Args } } : {}),
      ...(this.imageTokenId !== undefined ? { imageTokenId: this.imageTokenId } : {}),
      ...(this.framesPerImage > 1 ? { framesPerImage: this.framesPerImage } : {}),
      ...(this.splitQueries ? { splitQueries: true } : {}),
    };
    return packBridge('blip2', config, this.bridgeStateDict());
  }

  /**
   * Loads a bridge saved by {@link Blip2.saveBridge} (or the Q-Former part of any HF BLIP-2 file),
   * strictly; a saved config must read the frames of an image as this model does (`framesPerImage`, `splitQueries`).
   */
  loadBridge(saved: SavedBridge | Uint8Array): void {
    if (!(saved instanceof Uint8Array) && saved.kind === 'blip2') {
      const cfg = saved.config as Blip2BridgeConfig | undefined;
      const frames = cfg?.framesPerImage ?? 1;
      const split = cfg?.splitQueries ?? false;
      if (frames !== this.framesPerImage || split !== this.splitQueries) {
        throw new Error(`Blip2.loadBridge: the bridge reads ${frames} frame(s) per image${split ? ' with split queries' : ''}, this model ${this.framesPerImage}${this.splitQueries ? ' with split queries' : ''} (build it with the saved config's framesPerImage and splitQueries)`);
      }
    }
    withBridgeTensors(saved, 'blip2', 'Blip2.loadBridge', 'BLIP-2 bridge', (tensors) => {
      const { stateDict, ignoredKeys } = qformerStateDictFromHf(tensors);
      const prefix = this.stage1 ? 'stage1.qformer.' : 'qformer.';
      const own: StateDict = Object.fromEntries(Object.entries(stateDict).map(([k, t]) => [prefix + k, t]));
      if (this.stage1) for (const k of ignoredKeys) if (/^(vision_proj|text_proj|itm_head|cls)\.|^temp$/.test(k)) own[`stage1.${k}`] = tensors[k]!;
      this.loadStateDict(own);
    });
  }

  private bridgeStateDict(): StateDict {
    const out = qformerStateDictToHf(this.qformer);
    if (this.stage1) {
      for (const [k, t] of Object.entries(this.stage1.stateDict())) {
        if (k.startsWith('qformer.')) t.dispose();
        else out[k] = t;
      }
    }
    return out;
  }
}

function argmax(row: number[]): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}
