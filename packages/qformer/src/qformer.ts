import * as tf from '@tensorflow/tfjs-core';
import {
  LayerNorm,
  Linear,
  MASK_VALUE,
  Module,
  additiveMask,
  assertDtype,
  assertShape,
  normal,
  registerModuleClass,
  type LayerModule,
  type SymbolicShape,
} from '@vlm/core';
import { resolveQFormerArgs, type QFormerArgs, type ResolvedQFormerArgs } from './config';
import { QFORMER_MODES, qformerAdditiveMask, qformerAllowedMask, type QFormerMode } from './masks';
import { QFormerTextEmbeddings } from './text-embeddings';
import { QFormerEncoder } from './layer';

/** Inputs of {@link QFormer.encode}. */
export interface QFormerInputs {
  /** Frozen vision features `[b, M, encoderHiddenSize]` (every mode but `'text'`). */
  imageEmbeds?: tf.Tensor;
  /** int32 text ids `[b, T]` (every mode but `'query'`). */
  inputIds?: tf.Tensor;
  /** Text padding mask `[b, T]`, 1 = real token, 0 = padding (masks keys only). Default: all real. */
  attentionMask?: tf.Tensor;
  /**
   * Which pass, see {@link QFormerMode}. Default: `'query'` without `inputIds`, `'text'`
   * without `imageEmbeds`, else `'itm'` (as the reference code).
   */
  mode?: QFormerMode;
  /** Image padding mask `[b, M]`, 1 = real feature (masks cross-attention keys). Default: all real. */
  imageAttentionMask?: tf.Tensor;
  /**
   * `imageEmbeds` holds this many frames of `M / numFrames` tokens one after the other (frames
   * of a clip, or views of an image). Each frame is read by its own copy of the `Q` queries:
   * `numFrames · Q` query positions, where copy `f` cross-attends only to frame `f` and
   * self-attends only within its copy — the Q-Former run on each frame alone, its query outputs
   * concatenated (how InstructBLIP reads the frames of a video). Text (modes `'itm'`, `'itg'`)
   * sees every copy its mode lets it see. Default: `1`.
   */
  numFrames?: number;
  /**
   * With `numFrames`: split the `Q` queries among the frames instead of copying them, group `f`
   * (queries `f·Q/F … (f+1)·Q/F − 1`) reading frame `f` only and self-attending only within the
   * group: `Q` query positions in all, each group specialised to its frame. `Q` must be a
   * multiple of `numFrames`. Default: `false`.
   */
  splitQueries?: boolean;
}

/** Outputs of {@link QFormer.encode}; new tensors owned by the caller. */
export interface QFormerOutputs {
  /** `[b, Q + T, H]` (mode `'query'`: `[b, Q, H]`, mode `'text'`: `[b, T, H]`). */
  lastHiddenState: tf.Tensor;
  /** The query positions `[b, Q, H]` (`[b, numFrames · Q, H]` with a copy of the queries per frame; absent in mode `'text'`). */
  queryOutput?: tf.Tensor;
  /** `language_projection(queryOutput)` `[b, Q or numFrames · Q, llmHiddenSize]` (when built with `llmHiddenSize` and queries are present). */
  projected?: tf.Tensor;
}

/**
 * The BLIP-2 Querying Transformer, with Hugging Face `Blip2QFormerModel` semantics and
 * PyTorch parameter names: `Q` learned query tokens read the frozen image features through
 * cross-attention (every `crossAttentionFrequency` layers, query positions only), share
 * self-attention with optional text tokens under the mask of the chosen {@link QFormerMode},
 * and have their own feed-forward weights (`*_query`). BERT-style post-LayerNorm layers, exact
 * GELU, LayerNorm eps `layerNormEps`. Dropout is the identity (eval semantics) in every pass.
 *
 * ```
 * emb = [query_tokens (Q) ; word + position embeddings (T)]
 * h   = layernorm(emb)                       over the concatenation
 * h   = encoder(h, mask(mode), image)        no final LayerNorm
 * projected = language_projection(h[:, :Q])  when llmHiddenSize is set
 * ```
 *
 * State-dict keys (`{i}` every layer, `{c}` the cross-attention layers):
 * `query_tokens` `[1, Q, H]`, `embeddings.word_embeddings.weight`,
 * `embeddings.position_embeddings.weight` (text branch), `layernorm.{weight,bias}`,
 * `encoder.layer.{i}.attention.attention.{query,key,value}.{weight,bias}`,
 * `encoder.layer.{i}.attention.output.{dense,LayerNorm}.*`, `encoder.layer.{c}.crossattention.*`,
 * `encoder.layer.{i}.{intermediate,output}.*` (text branch),
 * `encoder.layer.{i}.{intermediate_query,output_query}.*`, `language_projection.{weight,bias}`.
 * See the README for the Hugging Face checkpoint key table ({@link qformerStateDictFromHf}).
 *
 * As a tfjs-layers layer (through core's `ModuleLayer`), {@link QFormer.forward} maps image
 * features to the visual tokens: `projected` when there is a language projection, else the
 * query outputs.
 *
 * @example
 * ```ts
 * const qformer = new QFormer({ hiddenSize: 32, numHiddenLayers: 3, numAttentionHeads: 4, intermediateSize: 64,
 *   encoderHiddenSize: 24, numQueryTokens: 8, vocabSize: 50, maxPositionEmbeddings: 16, llmHiddenSize: 40 });
 * const image = tf.randomNormal([2, 17, 24]);
 * const ids = tf.tensor2d([[1, 5, 9, 2], [1, 7, 0, 0]], undefined, 'int32');
 * const mask = tf.tensor2d([[1, 1, 1, 1], [1, 1, 0, 0]], undefined, 'int32');
 * const { lastHiddenState, queryOutput } = qformer.encode({ imageEmbeds: image, inputIds: ids, attentionMask: mask, mode: 'itm' });
 * lastHiddenState.shape; // [2, 12, 32]   (8 queries + 4 text tokens)
 * queryOutput!.shape;    // [2, 8, 32]
 * qformer.forward(image).shape; // [2, 8, 40]   the projected visual prompt
 * ```
 */
export class QFormer extends Module implements LayerModule {
  /** Name under which core's `ModuleLayer` saves this class. */
  static className = 'QFormer';
  /** The arguments with every default filled in. */
  readonly args: ResolvedQFormerArgs;
  /** Word and position embeddings of the text branch (keys `embeddings.*`, HF `Blip2TextEmbeddings`), or `null` when built with `useTextInput: false`. */
  readonly embeddings: QFormerTextEmbeddings | null;
  /** LayerNorm over the concatenated query and text embeddings before the encoder (HF `Blip2QFormerModel.layernorm`, keys `layernorm.{weight,bias}` `[H]`). */
  readonly layernorm: LayerNorm;
  /** The `numHiddenLayers` BERT layers (HF `Blip2QFormerEncoder`, keys `encoder.layer.{i}.*`). */
  readonly encoder: QFormerEncoder;
  /** Linear `H → llmHiddenSize` (BLIP-2 stage 2), or `null`. */
  readonly languageProjection: Linear | null;

  constructor(args: QFormerArgs = {}) {
    super();
    const a = (this.args = resolveQFormerArgs(args));
    const H = a.hiddenSize;
    this.registerParameter('query_tokens', { shape: [1, a.numQueryTokens, H], init: () => normal([1, a.numQueryTokens, H], 0.02) });
    this.embeddings = a.useTextInput ? this.registerModule('embeddings', new QFormerTextEmbeddings(a)) : null;
    this.layernorm = this.registerModule('layernorm', new LayerNorm({ dim: H, eps: a.layerNormEps }));
    this.encoder = this.registerModule('encoder', new QFormerEncoder(a));
    this.languageProjection =
      a.llmHiddenSize !== null ? this.registerModule('language_projection', new Linear({ inFeatures: H, outFeatures: a.llmHiddenSize })) : null;
  }

  /** The learned queries `[1, Q, H]`. */
  get queryTokens(): tf.Variable {
    return this.parameter('query_tokens');
  }

  /**
   * One Q-Former pass in the given mode (see {@link QFormerInputs}, {@link QFormerOutputs}).
   * Throws an `Error` naming the expected and actual shape or dtype for a bad input, and for a
   * missing input the mode needs.
   */
  encode(inputs: QFormerInputs): QFormerOutputs {
    const { imageEmbeds, inputIds, attentionMask, imageAttentionMask, numFrames: F = 1, splitQueries = false } = inputs;
    const mode: QFormerMode = inputs.mode ?? (inputIds === undefined ? 'query' : imageEmbeds === undefined ? 'text' : 'itm');
    if (!QFORMER_MODES.includes(mode)) throw new Error(`QFormer: mode must be one of ${QFORMER_MODES.join(', ')}, got '${String(mode)}'`);
    const { numQueryTokens: Q1, hiddenSize: H, encoderHiddenSize: E } = this.args;
    if (!Number.isInteger(F) || F < 1) throw new Error(`QFormer: numFrames must be a positive integer, got ${F}`);
    if (splitQueries && Q1 % F !== 0) throw new Error(`QFormer: splitQueries needs numQueryTokens (${Q1}) to be a multiple of numFrames (${F})`);
    const Q = this.numQueryPositions(F, splitQueries);
    const group = Q / F; // query positions that read one frame
    const useQueries = mode !== 'text';
    const useText = mode !== 'query';
    if (useQueries && !imageEmbeds) throw new Error(`QFormer: mode '${mode}' needs imageEmbeds [batch, tokens, ${E}]`);
    if (useText && !inputIds) throw new Error(`QFormer: mode '${mode}' needs inputIds [batch, text] (int32)`);
    if (useText && !this.embeddings) {
      throw new Error(`QFormer: mode '${mode}' needs the text branch; build the QFormer with useTextInput: true`);
    }
    let b: number;
    if (useQueries) {
      assertShape(imageEmbeds!, [null, null, E], 'QFormer imageEmbeds', ['batch', 'tokens', 'encoderHiddenSize']);
      assertDtype(imageEmbeds!, ['float32'], 'QFormer imageEmbeds');
      b = imageEmbeds!.shape[0]!;
      if (imageAttentionMask) assertShape(imageAttentionMask, [b, imageEmbeds!.shape[1]!], 'QFormer imageAttentionMask', ['batch', 'tokens']);
      if (imageEmbeds!.shape[1]! % F !== 0) throw new Error(`QFormer: imageEmbeds has ${imageEmbeds!.shape[1]} tokens, not a whole number of tokens for each of numFrames ${F} frames`);
      if (mode === 'query' && F > 1 && !splitQueries) return this.encodeFramesApart(imageEmbeds!, imageAttentionMask, F);
    } else {
      b = inputIds!.shape[0]!;
    }
    let T = 0;
    if (useText) {
      assertDtype(inputIds!, ['int32'], 'QFormer inputIds');
      assertShape(inputIds!, [b, null], 'QFormer inputIds', ['batch', 'text']);
      T = inputIds!.shape[1]!;
      if (attentionMask) assertShape(attentionMask, [b, T], 'QFormer attentionMask', ['batch', 'text']);
    }
    return tf.tidy(() => {
      const parts: tf.Tensor[] = [];
      if (useQueries) parts.push(tf.tile(this.queryTokens, [b, Q / Q1, 1])); // [b, Q, H] (broadcastTo keeps 1 row for b = 0)
      if (useText) parts.push(this.embeddings!.forward(inputIds!)); // [b, T, H]
      const emb = parts.length > 1 ? tf.concat(parts, 1) : parts[0]!; // [b, L, H]
      const h0 = this.layernorm.forward(emb);
      let allowed: tf.Tensor | undefined = mode === 'query' && F === 1 ? undefined : qformerAllowedMask(mode, b, Q, attentionMask, T); // [b, L, L]
      if (allowed && useQueries && F > 1) allowed = tf.logicalAnd(allowed, framesApartMask(F, group, Q + T, Q + T)); // each group of queries sees only itself
      const selfMask = allowed ? qformerAdditiveMask(allowed) : undefined; // [b, 1, L, L]
      let imageKeys = useQueries && imageAttentionMask ? tf.reshape(tf.notEqual(imageAttentionMask, 0), [b, 1, 1, -1]) : undefined; // [b, 1, 1, M]
      if (useQueries && F > 1) {
        const M = imageEmbeds!.shape[1]!;
        const ownFrame = tf.reshape(framesApartMask(F, group, Q, M, M / F), [1, 1, Q, M]); // group f sees frame f
        imageKeys = imageKeys ? tf.logicalAnd(imageKeys, ownFrame) : ownFrame;
      }
      const encMask = imageKeys ? additiveMask(imageKeys, MASK_VALUE) : undefined; // [b or 1, 1, 1 or Q, M]
      const h = this.encoder.forward(h0, selfMask, useQueries ? Q : 0, useQueries ? imageEmbeds : undefined, encMask);
      const out: QFormerOutputs = { lastHiddenState: h };
      if (useQueries) {
        const queryOutput = T > 0 ? tf.slice(h, [0, 0, 0], [b, Q, H]) : tf.clone(h); // [b, Q, H]
        out.queryOutput = queryOutput;
        if (this.languageProjection) out.projected = this.languageProjection.forward(queryOutput); // [b, Q, llm]
      }
      return out as unknown as tf.TensorContainer;
    }) as unknown as QFormerOutputs;
  }

  /**
   * Query positions (and query outputs) of a pass over `numFrames` frames: `numQueryTokens` when
   * the queries are split among the frames, else a copy of them per frame,
   * `numFrames · numQueryTokens` (see {@link QFormerInputs.numFrames}).
   */
  numQueryPositions(numFrames = 1, splitQueries = false): number {
    return splitQueries ? this.args.numQueryTokens : numFrames * this.args.numQueryTokens;
  }

  /** Mode `'query'` on `F` frames: the Q-Former on each frame alone (a batch of `b · F`), outputs side by side. */
  private encodeFramesApart(imageEmbeds: tf.Tensor, imageAttentionMask: tf.Tensor | undefined, F: number): QFormerOutputs {
    const [b, M, E] = imageEmbeds.shape as [number, number, number];
    const out = tf.tidy(() =>
      this.encode({
        imageEmbeds: tf.reshape(imageEmbeds, [b * F, M / F, E]),
        imageAttentionMask: imageAttentionMask ? tf.reshape(imageAttentionMask, [b * F, M / F]) : undefined,
        mode: 'query',
      }) as unknown as tf.TensorContainer,
    ) as unknown as QFormerOutputs;
    const apart = (t: tf.Tensor | undefined) => t && tf.tidy(() => tf.reshape(t, [b, F * t.shape[1]!, t.shape[2]!])); // [b·F, Q, W] → [b, F·Q, W]
    const joined: QFormerOutputs = { lastHiddenState: apart(out.lastHiddenState)!, queryOutput: apart(out.queryOutput), projected: apart(out.projected) };
    tf.dispose(Object.values(out));
    if (!joined.queryOutput) delete joined.queryOutput;
    if (!joined.projected) delete joined.projected;
    return joined;
  }

  /**
   * Image features `[b, M, E]` → visual tokens: `[b, Q, llmHiddenSize]` (projected) when built
   * with `llmHiddenSize`, else the query outputs `[b, Q, H]`. Mode `'query'`.
   */
  forward(imageEmbeds: tf.Tensor): tf.Tensor {
    const out = this.encode({ imageEmbeds, mode: 'query' });
    const keep = out.projected ?? out.queryOutput!;
    tf.dispose(Object.values(out).filter((t) => t !== keep));
    return keep;
  }

  /** `[b, M, E]` → `[b, Q, llmHiddenSize or H]`. */
  computeOutputShape(inputShape: SymbolicShape | SymbolicShape[]): SymbolicShape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as SymbolicShape;
    return [shape[0] ?? null, this.args.numQueryTokens, this.args.llmHiddenSize ?? this.args.hiddenSize];
  }

  /** The resolved {@link QFormerArgs} (JSON), enough to rebuild this module. */
  getConfig(): tf.serialization.ConfigDict {
    return { ...this.args };
  }
}

registerModuleClass(QFormer);

/**
 * bool `[rows, cols]`: among the first `F · Q` rows, row `i` (copy `⌊i / Q⌋` of the queries) may
 * see column `j` only when `j` lies in the same frame's block of `frameCols` columns (the first
 * `F · frameCols` columns); every other row and column is free.
 */
function framesApartMask(F: number, Q: number, rows: number, cols: number, frameCols = Q): tf.Tensor2D {
  const m = new Uint8Array(rows * cols).fill(1);
  for (let i = 0; i < F * Q; i++) for (let j = 0; j < F * frameCols; j++) m[i * cols + j] = Math.floor(i / Q) === Math.floor(j / frameCols) ? 1 : 0;
  return tf.tidy(() => tf.cast(tf.tensor2d(m, [rows, cols], 'int32'), 'bool') as tf.Tensor2D);
}
