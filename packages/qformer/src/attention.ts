import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Linear, Module, assertShape, scaledDotProductAttention } from '@vlm/core';
import type { ResolvedQFormerArgs } from './config';

/**
 * BERT self- or cross-attention with absolute positions (Hugging Face
 * `Blip2QFormerMultiHeadAttention`): `softmax(q·kᵀ/√d + mask)·v` per head, no output
 * projection (that is {@link QFormerSelfOutput}'s `dense`). Attention dropout is the identity.
 *
 * State-dict keys: `query.{weight,bias}` `[H, H]`; `key.*`, `value.*` `[H, H]` for
 * self-attention or `[H, E]` for cross-attention to `E`-wide image features.
 *
 * @example
 * ```ts
 * const attn = new QFormerMultiHeadAttention(resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4, encoderHiddenSize: 24 }), true);
 * attn.forward(tf.zeros([2, 8, 32]), undefined, tf.zeros([2, 17, 24])).shape; // [2, 8, 32]
 * ```
 */
export class QFormerMultiHeadAttention extends Module {
  /** Number of heads (`num_attention_heads`); each is `H / heads` wide. */
  readonly numAttentionHeads: number;
  /** Query projection `H → H` of the hidden states (HF `query`, weight `[H, H]`). */
  readonly query: Linear;
  /** Key projection to `H`, from the hidden states (`[H, H]`) or, for cross-attention, from the `E`-wide image features (`[H, E]`) (HF `key`). */
  readonly key: Linear;
  /** Value projection to `H`, from the hidden states (`[H, H]`) or, for cross-attention, from the `E`-wide image features (`[H, E]`) (HF `value`). */
  readonly value: Linear;

  constructor(args: ResolvedQFormerArgs, isCrossAttention = false) {
    super();
    const H = args.hiddenSize;
    const kvIn = isCrossAttention ? args.encoderHiddenSize : H;
    this.numAttentionHeads = args.numAttentionHeads;
    this.query = this.registerModule('query', new Linear({ inFeatures: H, outFeatures: H }));
    this.key = this.registerModule('key', new Linear({ inFeatures: kvIn, outFeatures: H }));
    this.value = this.registerModule('value', new Linear({ inFeatures: kvIn, outFeatures: H }));
  }

  /**
   * @param hiddenStates `[b, n, H]`
   * @param mask additive, broadcastable to `[b, heads, n, m]` (e.g. `[b, 1, n, m]`)
   * @param encoderHiddenStates keys/values for cross-attention `[b, m, E]`; default: self-attention
   * @returns `[b, n, H]`
   */
  forward(hiddenStates: tf.Tensor, mask?: tf.Tensor, encoderHiddenStates?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const kv = encoderHiddenStates ?? hiddenStates;
      const q = this.query.forward(hiddenStates); // [b, n, H]
      const k = this.key.forward(kv); // [b, m, H]
      const v = this.value.forward(kv); // [b, m, H]
      return scaledDotProductAttention(q, k, v, { heads: this.numAttentionHeads, additiveMask: mask });
    });
  }
}

/**
 * The post-LayerNorm residual of a BERT sub-layer (Hugging Face `Blip2QFormerSelfOutput`, and
 * with `inFeatures = intermediateSize` `Blip2QFormerOutput`): `LayerNorm(dense(h) + input)`.
 * Hidden dropout is the identity. State-dict keys: `dense.{weight,bias}`, `LayerNorm.{weight,bias}`.
 *
 * @example
 * ```ts
 * const out = new QFormerSelfOutput(resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4 }));
 * out.forward(tf.zeros([2, 8, 32]), tf.zeros([2, 8, 32])).shape; // [2, 8, 32]
 * ```
 */
export class QFormerSelfOutput extends Module {
  /** Linear `inFeatures → H` applied before the residual (HF `dense`; weight `[H, H]`, or `[H, I]` in {@link QFormerOutput}). */
  readonly dense: Linear;
  /** LayerNorm over `H` after the residual, eps `layerNormEps` (HF `LayerNorm`; the PyTorch casing keeps the key `LayerNorm.*`). */
  readonly LayerNorm: LayerNorm;

  constructor(args: ResolvedQFormerArgs, inFeatures = args.hiddenSize) {
    super();
    this.dense = this.registerModule('dense', new Linear({ inFeatures, outFeatures: args.hiddenSize }));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm({ dim: args.hiddenSize, eps: args.layerNormEps }));
  }

  /**
   * @param hiddenStates `[b, n, inFeatures]`
   * @param inputTensor the residual `[b, n, H]`
   * @returns `[b, n, H]`
   */
  forward(hiddenStates: tf.Tensor, inputTensor: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.LayerNorm.forward(tf.add(this.dense.forward(hiddenStates), inputTensor)));
  }
}

/**
 * A whole BERT attention sub-layer (Hugging Face `Blip2QFormerAttention`):
 * `LayerNorm(dense(attention(h)) + h)`. State-dict keys `attention.{query,key,value}.*` and
 * `output.{dense,LayerNorm}.*`.
 *
 * @example
 * ```ts
 * const cross = new QFormerAttention(resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4, encoderHiddenSize: 24 }), true);
 * cross.forward(tf.zeros([2, 8, 32]), undefined, tf.zeros([2, 17, 24])).shape; // [2, 8, 32]
 * ```
 */
export class QFormerAttention extends Module {
  /** The multi-head attention (HF `attention`, keys `attention.{query,key,value}.*`). */
  readonly attention: QFormerMultiHeadAttention;
  /** Output projection, residual and LayerNorm (HF `output`, keys `output.{dense,LayerNorm}.*`). */
  readonly output: QFormerSelfOutput;
  /** Whether keys and values come from the image features (a `crossattention` sub-layer) instead of the hidden states. */
  readonly isCrossAttention: boolean;
  private readonly kvWidth: number;

  constructor(args: ResolvedQFormerArgs, isCrossAttention = false) {
    super();
    this.isCrossAttention = isCrossAttention;
    this.kvWidth = isCrossAttention ? args.encoderHiddenSize : args.hiddenSize;
    this.attention = this.registerModule('attention', new QFormerMultiHeadAttention(args, isCrossAttention));
    this.output = this.registerModule('output', new QFormerSelfOutput(args));
  }

  /**
   * @param hiddenStates `[b, n, H]`
   * @param mask additive `[b, 1, n, m]` (or broadcastable), optional
   * @param encoderHiddenStates `[b, m, E]` for cross-attention
   * @returns `[b, n, H]`
   */
  forward(hiddenStates: tf.Tensor, mask?: tf.Tensor, encoderHiddenStates?: tf.Tensor): tf.Tensor {
    if (this.isCrossAttention) {
      if (!encoderHiddenStates) throw new Error('QFormerAttention: cross-attention needs encoderHiddenStates [batch, tokens, encoderHiddenSize]');
      assertShape(encoderHiddenStates, [hiddenStates.shape[0]!, null, this.kvWidth], 'Q-Former imageEmbeds', ['batch', 'tokens', 'encoderHiddenSize']);
    }
    return tf.tidy(() => this.output.forward(this.attention.forward(hiddenStates, mask, encoderHiddenStates), hiddenStates));
  }
}
