import * as tf from '@tensorflow/tfjs-core';
import { Module, assertShape, checkTokenIds, generateGreedy, generateGreedyAsync, readSafetensors, writeSafetensors, type GreedyGenerationOutput, type StateDict } from '@vlm/core';
import {
  loadDecoderLMFromStateDict,
  loadOpenClipVisionTransformer,
  preprocessImages,
  type CausalLM,
  type ImageInput,
  type LMTokenizer,
  type VisionEncoder,
} from '@vlm/frozen-loaders';
import {
  FlamingoLM,
  checkMediaCount,
  decoderLMStateDictFromOpenFlamingo,
  flamingoLMStateDictFromOpenFlamingo,
  gatedCrossAttentionBlockArgsFromConfig,
  type FlamingoKVCache,
  type FlamingoOutput,
  type LayerGateValues,
} from '@vlm/gated-xattn';
import { FlamingoPerceiverResampler, flamingoPerceiverResamplerArgsFromConfig, type FlamingoPerceiverResamplerArgs } from '@vlm/perceiver';
import type { SavedBridge } from './bridge-checkpoint';
import { packBridge, withBridgeTensors } from './bridge-weights';
import { tokenizeBatch } from './prompts';
import { parseOpenFlamingoConfig, type OpenFlamingoConfig } from './openflamingo-config';

/** The bridge of a {@link Flamingo}: what is trained, and what {@link Flamingo.saveBridge} writes. */
export interface FlamingoBridgeConfig {
  /** The Perceiver Resampler's constructor arguments. */
  perceiver: FlamingoPerceiverResamplerArgs;
  /** A gated cross-attention block goes before decoder layer `i` iff `(i + 1) % crossAttnEveryNLayers == 0`. */
  crossAttnEveryNLayers: number;
  /** Width of each cross-attention head. */
  dimHead: number;
  /** Number of cross-attention heads. */
  heads: number;
  /** Feed-forward width multiple of the blocks. */
  ffMult: number;
  /** Immediate-media masking (OpenFlamingo's default) or all previous media. */
  onlyAttendImmediateMedia: boolean;
  /** Id of `<image>` in the LM vocabulary. */
  mediaTokenId: number;
  /** Id of `<|endofchunk|>` (generation stops there). */
  eocTokenId: number;
  /**
   * Each image's vision tokens are this many frames, one after the other: the views of a
   * `MultiViewVisionEncoder` of `@vlm/frozen-loaders` (the demo's: a blurred view and a
   * colour-blind view), or the frames of a clip. The Perceiver Resampler adds its learned frame embedding
   * (`frame_embs`, OpenFlamingo's) to each, so it knows which tokens come from which; it needs
   * `perceiver.maxNumFrames` ≥ this. Default: `1`.
   */
  framesPerImage?: number;
}

/** Constructor arguments of {@link Flamingo}. */
export interface FlamingoArgs {
  /** The frozen vision encoder (not owned unless `ownParts`). */
  vision: VisionEncoder;
  /** The frozen decoder LM (not owned unless `ownParts`); {@link Flamingo} freezes it. */
  lm: CausalLM;
  /** The bridge: resampler and gated cross-attention settings, media and end-of-chunk ids. */
  bridge: FlamingoBridgeConfig;
  /** Tokenizer for string prompts and decoded text. Default: none (token ids only). */
  tokenizer?: LMTokenizer;
  /** {@link Flamingo.dispose} also disposes `vision` and `lm`. Default: `false`. */
  ownParts?: boolean;
}

/** What {@link Flamingo.generate} takes. */
export interface FlamingoGenerateArgs {
  /**
   * The images of each row, in the order of their `<image>` tokens: `ImageInput[][]` (decoded
   * images, preprocessed as the encoder needs), or pixels `[batch, T_img, ...encoderInput]`
   * (`[batch, T_img, F, ...encoderInput]` with frames, as OpenFlamingo's `vision_x`), or
   * vision tokens `[batch, T_img, tokens, width]` with `visionTokens: true`.
   */
  images: readonly (readonly ImageInput[])[] | tf.Tensor;
  /** `images` is already encoded (vision tokens). Default: `false`. */
  visionTokens?: boolean;
  /** Prompts (one per row, with `<image>` and `<|endofchunk|>` markers) or token ids `[batch, T]` (left-padded). */
  prompt: string | readonly string[] | tf.Tensor;
  /** `[batch, T]` with token-id prompts. Default: all ones. */
  attentionMask?: tf.Tensor;
  /** Most new tokens. Default: `20`. */
  maxNewTokens?: number;
  /** Stop id. Default: the bridge's `eocTokenId` (as OpenFlamingo's `generate`). */
  eosTokenId?: number;
  /** Filler of finished rows. Default: the LM config's pad id, else `eosTokenId`. */
  padTokenId?: number;
  /**
   * Never generate `<image>` (its logit is set to -1e9): a generated media token would stand
   * for an image the prompt does not have. Default: `true`.
   */
  suppressMediaToken?: boolean;
}

/** What {@link Flamingo.generate} returns. */
export interface FlamingoGenerateResult extends GreedyGenerationOutput {
  /** Only the new tokens of each row (finished rows stop at the end-of-chunk token, which is kept). */
  newTokens: number[][];
  /** With a tokenizer: the new tokens decoded (special tokens skipped), one string per row. */
  text?: string[];
}

/**
 * A whole Flamingo model (Alayrac et al. 2022; OpenFlamingo's `Flamingo`): a frozen vision
 * encoder, a Perceiver Resampler that turns each image's tokens into a fixed set of visual
 * tokens, and a frozen decoder LM with gated cross-attention blocks (`x + tanh(α)·XAttn`) before
 * every N-th layer ({@link @vlm/gated-xattn!FlamingoLM}). Prompts interleave images and text: each `<image>`
 * token marks where an image comes, `<|endofchunk|>` ends its text.
 *
 * The bridge (resampler + blocks) is the only trainable part: `trainableVariables(flamingo)`.
 * Its state dict uses OpenFlamingo's names (`perceiver.*`, `lang_encoder.gated_cross_attn_layers.*`),
 * so it loads into PyTorch's `Flamingo.load_state_dict(strict=False)` and back.
 *
 * @example
 * ```ts
 * const model = Flamingo.fromOpenFlamingo({ config, weights }, { tokenizer });
 * const { text } = model.generate({ images: [[image]], prompt: '<image>A photo of', maxNewTokens: 8 });
 * ```
 */
export class Flamingo extends Module {
  /** The frozen vision encoder. */
  readonly vision: VisionEncoder;
  /** The frozen decoder LM. */
  readonly lm: CausalLM;
  /** The Perceiver Resampler (trained). */
  readonly perceiver: FlamingoPerceiverResampler;
  /** The LM with gated cross-attention blocks (the blocks are trained). */
  readonly lang: FlamingoLM;
  /** The bridge settings. */
  readonly bridge: FlamingoBridgeConfig;
  /** The tokenizer, if given. */
  readonly tokenizer: LMTokenizer | undefined;
  private readonly ownParts: boolean;

  constructor(args: FlamingoArgs) {
    super();
    const { vision, lm, bridge } = args;
    if (bridge.perceiver.dim !== vision.tokenWidth) {
      throw new Error(`Flamingo: the perceiver's dim (${bridge.perceiver.dim}) must equal the vision encoder's token width (${vision.tokenWidth})`);
    }
    const frames = bridge.framesPerImage ?? 1;
    if (!Number.isInteger(frames) || frames < 1) throw new Error(`Flamingo: framesPerImage must be a positive integer, got ${String(bridge.framesPerImage)}`);
    if (frames > 1 && !((bridge.perceiver.maxNumFrames ?? 0) >= frames)) {
      throw new Error(`Flamingo: framesPerImage ${frames} needs the perceiver's frame embeddings (perceiver.maxNumFrames >= ${frames}), got maxNumFrames ${String(bridge.perceiver.maxNumFrames)}`);
    }
    if (Number.isFinite(vision.numTokens) && vision.numTokens % frames !== 0) {
      throw new Error(`Flamingo: the vision encoder's ${vision.numTokens} tokens per image do not split into framesPerImage ${frames} frames`);
    }
    this.vision = vision;
    this.lm = lm;
    this.bridge = { ...bridge, perceiver: { ...bridge.perceiver } };
    this.tokenizer = args.tokenizer;
    this.ownParts = args.ownParts ?? false;
    this.perceiver = this.registerModule('perceiver', new FlamingoPerceiverResampler(bridge.perceiver));
    this.lang = this.registerModule(
      'lang_encoder',
      new FlamingoLM({
        lm,
        dimVisual: bridge.perceiver.dim,
        crossAttnEveryNLayers: bridge.crossAttnEveryNLayers,
        dimHead: bridge.dimHead,
        heads: bridge.heads,
        ffMult: bridge.ffMult,
        onlyAttendImmediateMedia: bridge.onlyAttendImmediateMedia,
        mediaTokenId: bridge.mediaTokenId,
      }),
    );
  }

  /**
   * Loads a whole OpenFlamingo model: `config` ({@link OpenFlamingoConfig}: the open_clip vision
   * config, the LM's Hugging Face config, the perceiver and cross-attention kwargs, the media
   * and end-of-chunk ids) and `weights`, a `Flamingo.state_dict()` as safetensors bytes or
   * tensors (`vision_encoder.*`, `perceiver.*`, `lang_encoder.*`). Every part loads strictly;
   * the caller keeps ownership of `weights` tensors.
   *
   * @example
   * ```ts
   * const flamingo = Flamingo.fromOpenFlamingo({ config: JSON.parse(configText), weights: bytes }, { tokenizer });
   * ```
   */
  static fromOpenFlamingo(
    checkpoint: {
      /** See {@link OpenFlamingoConfig}. */
      config: OpenFlamingoConfig | Record<string, unknown>;
      /** `Flamingo.state_dict()`: safetensors bytes or tensors by key. */
      weights: Uint8Array | StateDict;
    },
    options: {
      /** Tokenizer for string prompts. */
      tokenizer?: LMTokenizer;
    } = {},
  ): Flamingo {
    const config = parseOpenFlamingoConfig(checkpoint.config);
    const owned = checkpoint.weights instanceof Uint8Array;
    const weights: StateDict = owned ? readSafetensors(checkpoint.weights as Uint8Array, { source: 'OpenFlamingo checkpoint' }).tensors : (checkpoint.weights as StateDict);
    let vision: VisionEncoder | undefined;
    let lm: CausalLM | undefined;
    let model: Flamingo | undefined;
    try {
      const visionDict = Object.fromEntries(Object.entries(weights).filter(([k]) => k.startsWith('vision_encoder.')));
      vision = loadOpenClipVisionTransformer({ config: config.open_clip_config, weights: writeSafetensors(visionDict) }, { prefix: 'vision_encoder.' });
      lm = loadDecoderLMFromStateDict(config.text_config, decoderLMStateDictFromOpenFlamingo(weights));
      const { dim, ...block } = gatedCrossAttentionBlockArgsFromConfig(config.xattn_kwargs);
      if (dim !== lm.hiddenSize) throw new Error(`Flamingo.fromOpenFlamingo: xattn_kwargs.dim ${dim} is not the LM's hidden size ${lm.hiddenSize}`);
      model = new Flamingo({
        vision,
        lm,
        tokenizer: options.tokenizer,
        ownParts: true,
        bridge: {
          perceiver: flamingoPerceiverResamplerArgsFromConfig(config.perceiver_kwargs),
          crossAttnEveryNLayers: config.cross_attn_every_n_layers,
          dimHead: block.dimHead ?? 64,
          heads: block.heads ?? 8,
          ffMult: block.ffMult ?? 4,
          onlyAttendImmediateMedia: block.onlyAttendImmediateMedia ?? true,
          mediaTokenId: config.media_token_id,
          eocTokenId: config.eoc_token_id,
        },
      });
      const perceiver = Object.fromEntries(Object.entries(weights).flatMap(([k, t]) => (k.startsWith('perceiver.') ? [[k.slice('perceiver.'.length), t]] : [])));
      model.perceiver.loadStateDict(perceiver);
      model.lang.loadStateDict(flamingoLMStateDictFromOpenFlamingo(weights));
      return model;
    } catch (e) {
      if (model) model.dispose();
      else {
        lm?.dispose();
        vision?.dispose();
      }
      throw e;
    } finally {
      if (owned) tf.dispose(Object.values(weights));
    }
  }

  /**
   * The frozen encoder on pixels `[N, ...encoderInput]` (preprocessed as `vision.preprocessing`
   * says) → vision tokens `[N, tokens, width]`.
   */
  encodeImages(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.vision.encode(pixels));
  }

  /**
   * Vision tokens `[batch, T_img, tokens, width]` (split into the bridge's
   * {@link FlamingoBridgeConfig.framesPerImage} frames) or `[batch, T_img, F, tokens, width]` →
   * visual tokens `[batch, T_img, numLatents, width]` (the Perceiver Resampler).
   */
  resample(visionTokens: tf.Tensor): tf.Tensor {
    if (visionTokens.rank === 4) {
      const [b, t, n, d] = visionTokens.shape as [number, number, number, number];
      const frames = this.bridge.framesPerImage ?? 1;
      if (n % frames !== 0) throw new Error(`Flamingo vision tokens: expected [batch, T_img, tokens, width] with tokens a multiple of framesPerImage ${frames}, got [${visionTokens.shape}]`);
      return tf.tidy(() => this.perceiver.forward(tf.reshape(visionTokens, [b, t, frames, n / frames, d])));
    }
    assertShape(visionTokens, [null, null, null, null, this.vision.tokenWidth], 'Flamingo vision tokens', ['batch', 'T_img', 'frames', 'tokens', 'width']);
    return this.perceiver.forward(visionTokens);
  }

  /**
   * The LM's forward conditioned on the images: `inputIds` `[batch, T]` with one `<image>` per
   * image, and either `visionTokens` `[batch, T_img, tokens, width]` or `media` (already
   * resampled). Returns the logits `[batch, T, vocab]` (and the other {@link @vlm/gated-xattn!FlamingoOutput} fields).
   */
  forward(args: {
    /** int32 `[batch, T]`. */
    inputIds: tf.Tensor;
    /** `[batch, T]`, 1 = real token. */
    attentionMask?: tf.Tensor;
    /** Encoder tokens of each row's images `[batch, T_img, tokens, width]`. */
    visionTokens?: tf.Tensor;
    /** Resampled visual tokens `[batch, T_img, numLatents, width]` (instead of `visionTokens`). */
    media?: tf.Tensor;
  }): FlamingoOutput {
    if (!args.media && !args.visionTokens) throw new Error('Flamingo.forward: expected visionTokens [batch, T_img, tokens, width] or media, got neither');
    return tf.tidy(() => {
      const media = args.media ?? this.resample(args.visionTokens!);
      return this.lang.forward({ inputIds: args.inputIds, attentionMask: args.attentionMask, media }) as unknown as tf.TensorContainer;
    }) as unknown as FlamingoOutput;
  }

  /**
   * Checks token ids on the host as {@link Flamingo.forward} checks them after read-backs: every
   * id in `[0, vocabSize)` of the LM, and at most `numImages` `<image>` markers per row. For
   * losses run in `withoutReadbackChecks` (`@vlm/core`), e.g. training on WebGPU: check the
   * data once, then no forward reads anything back synchronously.
   *
   * @param ids rows of token ids (e.g. `await inputIds.array()`, once for a whole data set)
   * @param numImages images per row the forwards get (`T_img` of their vision tokens)
   *
   * @example
   * ```ts
   * flamingo.checkInputIds((await data.inputIds.array()) as number[][], 1, 'training data');
   * const loss = withoutReadbackChecks(() => causalLmLoss(flamingo.forward(batch).logits, batch.labels));
   * ```
   */
  checkInputIds(ids: readonly (readonly number[])[], numImages: number, what = 'Flamingo inputIds'): void {
    checkTokenIds(ids, this.lm.vocabSize, what);
    const mediaToken = this.bridge.mediaTokenId;
    checkMediaCount(ids.map((row) => row.filter((v) => v === mediaToken).length), [ids.length, numImages, 0, 0], what);
  }

  /**
   * Greedy generation from images and an interleaved prompt (OpenFlamingo's `generate`,
   * `num_beams=1`): stops at `<|endofchunk|>`.
   *
   * @example
   * ```ts
   * flamingo.generate({ images: [[cat, dog]], prompt: '<image>a cat<|endofchunk|><image>a', maxNewTokens: 3 }).text; // ['dog']
   * ```
   */
  generate(args: FlamingoGenerateArgs): FlamingoGenerateResult {
    const { inputIds, attentionMask } = tokenizeBatch(this.tokenizer, args.prompt, args.attentionMask, 'Flamingo.generate');
    try {
      const b = inputIds.shape[0]!;
      const media = tf.tidy(() => this.resample(this.visionTokensOf(args.images, args.visionTokens ?? false, b)));
      try {
        const adjust = this.logitsAdjustment(args);
        const out = generateGreedy<FlamingoKVCache>(
          (a) => {
            const o = this.lang.forward({ ...a, media });
            if (!adjust) return o;
            const logits = tf.tidy(() => adjust(o.logits));
            o.logits.dispose();
            return { ...o, logits };
          },
          this.greedyArgs(args, inputIds, attentionMask),
        );
        return this.withText(out, out.sequences.arraySync() as number[][], inputIds.shape[1]!, args);
      } finally {
        media.dispose();
      }
    } finally {
      tf.dispose([inputIds, attentionMask]);
    }
  }

  /**
   * {@link Flamingo.generate} without synchronous read-backs: the same tokens, logits and text,
   * each step's ids read with `await` (`generateGreedyAsync` of `@vlm/core`; the prompt is checked
   * on the host and the forwards run in `withoutReadbackChecks`, see
   * {@link @vlm/gated-xattn!FlamingoLM.generationForward}). This is how to generate on WebGPU,
   * where a synchronous read stalls the GPU (or, in headless Chromium without a GPU, loses the device).
   *
   * @example
   * ```ts
   * const out = await flamingo.generateAsync({ images: [[image]], prompt: '<image> a', maxNewTokens: 8 });
   * out.text; // ['red square'] (special tokens skipped)
   * tf.dispose([out.sequences, out.stepLogits]); // the caller's
   * ```
   */
  async generateAsync(args: FlamingoGenerateArgs): Promise<FlamingoGenerateResult> {
    const { inputIds, attentionMask } = tokenizeBatch(this.tokenizer, args.prompt, args.attentionMask, 'Flamingo.generateAsync');
    try {
      const b = inputIds.shape[0]!;
      const media = tf.tidy(() => this.resample(this.visionTokensOf(args.images, args.visionTokens ?? false, b)));
      try {
        const forward = this.lang.generationForward(media, this.logitsAdjustment(args), 'Flamingo.generateAsync');
        const out = await generateGreedyAsync<FlamingoKVCache>(forward, this.greedyArgs(args, inputIds, attentionMask));
        try {
          return this.withText(out, (await out.sequences.array()) as number[][], inputIds.shape[1]!, args);
        } catch (e) {
          tf.dispose([out.sequences, out.stepLogits]);
          throw e;
        }
      } finally {
        media.dispose();
      }
    } finally {
      tf.dispose([inputIds, attentionMask]);
    }
  }

  // A generated <image> would name an image the prompt does not have: never choose it (unless asked to).
  private logitsAdjustment(args: FlamingoGenerateArgs): ((logits: tf.Tensor) => tf.Tensor) | undefined {
    if (!(args.suppressMediaToken ?? true)) return undefined;
    const mediaToken = this.bridge.mediaTokenId;
    return (logits) => {
      const v = logits.shape[2]!;
      const penalty = tf.mul(tf.reshape(tf.cast(tf.oneHot(tf.tensor1d([mediaToken], 'int32'), v), 'float32'), [1, 1, v]), -1e9);
      return tf.add(logits, penalty);
    };
  }

  private greedyArgs(args: FlamingoGenerateArgs, inputIds: tf.Tensor, attentionMask: tf.Tensor) {
    return {
      inputIds,
      attentionMask,
      maxNewTokens: args.maxNewTokens ?? 20,
      eosTokenId: args.eosTokenId ?? this.bridge.eocTokenId,
      padTokenId: args.padTokenId ?? this.lm.info.padTokenId,
    };
  }

  private withText(out: GreedyGenerationOutput, sequences: number[][], promptLength: number, args: FlamingoGenerateArgs): FlamingoGenerateResult {
    const newTokens = sequences.map((row) => cutAfter(row.slice(promptLength), args.eosTokenId ?? this.bridge.eocTokenId));
    const text = this.tokenizer ? newTokens.map((row) => this.tokenizer!.decode(row, { skipSpecialTokens: true }).trim()) : undefined;
    return { ...out, newTokens, text };
  }

  /** `tanh` of the attention and feed-forward gate of every block, by decoder layer. */
  gateValues(): Array<{
    /** Decoder layer the block runs before. */
    layer: number;
    /** `tanh(attn_gate)`. */
    attn: number;
    /** `tanh(ff_gate)`. */
    ff: number;
  }> {
    return this.lang.gateValues();
  }

  /**
   * {@link Flamingo.gateValues} read with one `await` (no synchronous read-back: for WebGPU,
   * or a training callback).
   *
   * @example
   * ```ts
   * const gates = await flamingo.gateValuesAsync(); // [{ layer: 0, attn: 0.01, ff: -0.02 }, ...]
   * ```
   */
  gateValuesAsync(): Promise<LayerGateValues[]> {
    return this.lang.gateValuesAsync();
  }

  /**
   * The bridge's weights under OpenFlamingo names (`perceiver.*`,
   * `lang_encoder.gated_cross_attn_layers.*`) as safetensors bytes, with its config: what
   * {@link Flamingo.loadBridge} reads back (and PyTorch's `load_state_dict(strict=False)`).
   */
  saveBridge(): SavedBridge<FlamingoBridgeConfig> {
    return packBridge('flamingo', structuredClone(this.bridge), this.stateDict());
  }

  /** Loads saved bridge weights (from {@link Flamingo.saveBridge}) into this model, strictly. */
  loadBridge(saved: SavedBridge<FlamingoBridgeConfig> | Uint8Array): void {
    withBridgeTensors(saved, 'flamingo', 'Flamingo.loadBridge', 'Flamingo bridge', (tensors) => this.loadStateDict(tensors));
  }

  /** Frees the bridge (and the encoder and LM when the model owns them, as `fromOpenFlamingo` models do). */
  override dispose(): void {
    super.dispose();
    if (this.ownParts) {
      this.lm.dispose();
      this.vision.dispose();
    }
  }

  private visionTokensOf(images: FlamingoGenerateArgs['images'], encoded: boolean, b: number): tf.Tensor {
    if (images instanceof tf.Tensor) {
      if (images.shape[0] !== b) throw new Error(`Flamingo.generate: images: expected ${b} rows (one per prompt), got ${images.shape[0]}`);
      if (encoded) return images;
      // pixels [batch, T_img, ...encoderInput] or, with frames, [batch, T_img, F, ...encoderInput]
      const frames = images.rank === 6 ? images.shape[2]! : 1;
      const rest = images.shape.slice(images.rank === 6 ? 3 : 2);
      const t = images.shape[1]!;
      const tokens = this.vision.encode(tf.reshape(images, [b * t * frames, ...rest]));
      return tf.reshape(tokens, [b, t, frames, tokens.shape[1], tokens.shape[2]]);
    }
    if (images.length !== b) throw new Error(`Flamingo.generate: images: expected ${b} rows (one per prompt), got ${images.length}`);
    const t = images[0]?.length ?? 0;
    if (t === 0 || images.some((row) => row.length !== t)) {
      throw new Error(`Flamingo.generate: images: expected the same positive number of images in every row, got [${images.map((r) => r.length)}]`);
    }
    const tokens = this.vision.encode(preprocessImages(images.flat(), this.vision.preprocessing));
    return tf.reshape(tokens, [b, t, tokens.shape[1], tokens.shape[2]]);
  }
}

function cutAfter(row: number[], eos: number): number[] {
  const i = row.indexOf(eos);
  return i < 0 ? row : row.slice(0, i + 1);
}
