import * as tf from '@tensorflow/tfjs-core';
import { Module, ModuleList } from '@vlm/core';
import type { ResolvedQFormerArgs } from './config';
import { QFormerAttention } from './attention';
import { QFormerIntermediate, QFormerOutput } from './feed-forward';

/**
 * One post-LayerNorm BERT layer of the Q-Former (Hugging Face `Blip2QFormerLayer`):
 *
 * ```
 * a  = attention(h, selfMask)                         over all L = Q + T positions
 * aq = crossattention(a[:, :Q], image)                query positions only, when layerIdx % crossAttentionFrequency == 0
 * out = [output_query(intermediate_query(aq), aq) ;   separate feed-forward weights for queries
 *        output(intermediate(a[:, Q:]), a[:, Q:])]    and for text
 * ```
 *
 * With `queryLength = 0` (mode `'text'`) every position is text and there is no cross-attention.
 * State-dict keys: `attention.*`, `crossattention.*` (cross layers), `intermediate.*` and
 * `output.*` (text branch), `intermediate_query.*`, `output_query.*`.
 *
 * @example
 * ```ts
 * const layer = new QFormerLayer(resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4, intermediateSize: 64, encoderHiddenSize: 24 }), 0);
 * layer.forward(tf.zeros([2, 15, 32]), undefined, 8, tf.zeros([2, 17, 24])).shape; // [2, 15, 32]
 * ```
 */
export class QFormerLayer extends Module {
  /** Index of this layer in the encoder (HF `layer_idx`); decides whether it cross-attends. */
  readonly layerIdx: number;
  /** Whether this layer cross-attends to the image: `layerIdx % crossAttentionFrequency == 0` (HF `has_cross_attention`). */
  readonly hasCrossAttention: boolean;
  /** Self-attention over all query and text positions (HF `attention`). */
  readonly attention: QFormerAttention;
  /** Cross-attention of the query positions to the image features (HF `crossattention`), or `null` on layers without it. */
  readonly crossattention: QFormerAttention | null;
  /** First half of the text feed-forward block (HF `intermediate`), or `null` without the text branch. */
  readonly intermediate: QFormerIntermediate | null;
  /** Second half of the text feed-forward block, with residual and LayerNorm (HF `output`), or `null` without the text branch. */
  readonly output: QFormerOutput | null;
  /** First half of the query feed-forward block (HF `intermediate_query`). */
  readonly intermediateQuery: QFormerIntermediate;
  /** Second half of the query feed-forward block, with residual and LayerNorm (HF `output_query`). */
  readonly outputQuery: QFormerOutput;

  constructor(args: ResolvedQFormerArgs, layerIdx: number) {
    super();
    this.layerIdx = layerIdx;
    this.hasCrossAttention = layerIdx % args.crossAttentionFrequency === 0;
    this.attention = this.registerModule('attention', new QFormerAttention(args));
    this.crossattention = this.hasCrossAttention ? this.registerModule('crossattention', new QFormerAttention(args, true)) : null;
    this.intermediate = args.useTextInput ? this.registerModule('intermediate', new QFormerIntermediate(args)) : null;
    this.output = args.useTextInput ? this.registerModule('output', new QFormerOutput(args)) : null;
    this.intermediateQuery = this.registerModule('intermediate_query', new QFormerIntermediate(args));
    this.outputQuery = this.registerModule('output_query', new QFormerOutput(args));
  }

  /**
   * @param hiddenStates `[b, L, H]`, queries first
   * @param selfMask additive `[b, 1, L, L]`, optional
   * @param queryLength `Q`, the number of leading query positions (`0`: text only)
   * @param encoderHiddenStates image features `[b, M, E]` (needed when `Q > 0` on cross layers)
   * @param encoderMask additive `[b, 1, 1, M]`, optional
   * @returns `[b, L, H]`
   */
  forward(
    hiddenStates: tf.Tensor,
    selfMask: tf.Tensor | undefined,
    queryLength: number,
    encoderHiddenStates?: tf.Tensor,
    encoderMask?: tf.Tensor,
  ): tf.Tensor {
    return tf.tidy(() => {
      const a = this.attention.forward(hiddenStates, selfMask); // [b, L, H]
      const [b, L, H] = a.shape as [number, number, number];
      if (queryLength === 0) return this.textFeedForward(a);
      let aq = L > queryLength ? tf.slice(a, [0, 0, 0], [b, queryLength, H]) : a; // [b, Q, H]
      if (this.crossattention) aq = this.crossattention.forward(aq, encoderMask, encoderHiddenStates);
      const outQuery = this.outputQuery.forward(this.intermediateQuery.forward(aq), aq); // [b, Q, H]
      if (L === queryLength) return outQuery;
      const at = tf.slice(a, [0, queryLength, 0], [b, L - queryLength, H]); // [b, T, H]
      return tf.concat([outQuery, this.textFeedForward(at)], 1); // [b, Q + T, H]
    });
  }

  private textFeedForward(x: tf.Tensor): tf.Tensor {
    if (!this.intermediate || !this.output) {
      throw new Error('QFormerLayer: text positions need the text branch; build the QFormer with useTextInput: true');
    }
    return this.output.forward(this.intermediate.forward(x), x);
  }
}

/**
 * The stack of {@link QFormerLayer}s (Hugging Face `Blip2QFormerEncoder`), state-dict keys
 * `layer.{i}.*`. No final LayerNorm (the layers are post-LN).
 *
 * @example
 * ```ts
 * const enc = new QFormerEncoder(resolveQFormerArgs({ hiddenSize: 32, numHiddenLayers: 3, numAttentionHeads: 4, intermediateSize: 64, encoderHiddenSize: 24 }));
 * enc.forward(tf.zeros([2, 8, 32]), undefined, 8, tf.zeros([2, 17, 24])).shape; // [2, 8, 32]
 * ```
 */
export class QFormerEncoder extends Module {
  /** The `numHiddenLayers` layers in order (HF `layer`, keys `layer.{i}.*`). */
  readonly layer: ModuleList<QFormerLayer>;

  constructor(args: ResolvedQFormerArgs) {
    super();
    const layers = Array.from({ length: args.numHiddenLayers }, (_, i) => new QFormerLayer(args, i));
    this.layer = this.registerModule('layer', new ModuleList(layers));
  }

  /** Runs every layer in turn; arguments as {@link QFormerLayer.forward}. Returns `[b, L, H]`. */
  forward(
    hiddenStates: tf.Tensor,
    selfMask: tf.Tensor | undefined,
    queryLength: number,
    encoderHiddenStates?: tf.Tensor,
    encoderMask?: tf.Tensor,
  ): tf.Tensor {
    return tf.tidy(() =>
      this.layer.modules.reduce((h, layer) => layer.forward(h, selfMask, queryLength, encoderHiddenStates, encoderMask), hiddenStates),
    );
  }
}
