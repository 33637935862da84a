import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { Linear, linear } from './linear';
import { xavierUniform } from './initializers';
import { scaledDotProductAttention } from './attention';
import { assertDtype, assertShape } from './shape-checks';

/** Constructor arguments of {@link MultiHeadAttention}. */
export interface MultiHeadAttentionArgs {
  /** Model width `E` (query width and output width). */
  embedDim: number;
  /** Number of heads; `embedDim` must be divisible by it. */
  numHeads: number;
  /** Biases on the input and output projections. Default: `true`. */
  bias?: boolean;
  /** Key width. Default: `embedDim`. */
  kdim?: number;
  /** Value width. Default: `embedDim`. */
  vdim?: number;
}

/** Masks of {@link MultiHeadAttention.forward}, with `torch.nn.MultiheadAttention`'s meaning. */
export interface MultiHeadAttentionMasks {
  /**
   * `[batch, keys]`. Bool: **true marks padding** (ignored keys), as in PyTorch. Float: added
   * to the logits.
   */
  keyPaddingMask?: tf.Tensor;
  /**
   * `[queries, keys]` or `[batch·heads, queries, keys]`. Bool: **true marks a pair that may
   * NOT attend**, as in PyTorch. Float: added to the logits.
   */
  attnMask?: tf.Tensor;
}

/**
 * `torch.nn.MultiheadAttention` with `batch_first=True` and the same state-dict keys:
 * `in_proj_weight` `[3E, E]` and `in_proj_bias` `[3E]` (rows `[q; k; v]`), or
 * `q_proj_weight`, `k_proj_weight`, `v_proj_weight` when `kdim`/`vdim` differ from `E`;
 * `out_proj.weight` `[E, E]`, `out_proj.bias` `[E]`. No dropout (inference semantics).
 *
 * Masked logits get a finite {@link MASK_VALUE} rather than `-inf`: a query whose keys are
 * all masked averages every key where PyTorch returns NaN.
 *
 * @example
 * ```ts
 * const mha = new MultiHeadAttention({ embedDim: 32, numHeads: 4 });
 * const q = tf.randomNormal([2, 8, 32]), kv = tf.randomNormal([2, 17, 32]);
 * const pad = tf.tensor2d([[...Array(17).fill(false)], [...Array(12).fill(false), ...Array(5).fill(true)]], undefined, 'bool');
 * mha.forward(q, kv, kv, { keyPaddingMask: pad }).shape; // [2, 8, 32]
 * ```
 */
export class MultiHeadAttention extends Module {
  /** Model width `E`: query width and output width. */
  readonly embedDim: number;
  /** Number of heads (head width `E / numHeads`). */
  readonly numHeads: number;
  /** Key width. */
  readonly kdim: number;
  /** Value width. */
  readonly vdim: number;
  /** Whether the projections have biases (`in_proj_bias`, `out_proj.bias`). */
  readonly hasBias: boolean;
  /** Whether q, k and v projections are packed in `in_proj_weight` (kdim = vdim = E). */
  readonly packed: boolean;
  /** `out_proj`: `E → E`. */
  readonly outProj: Linear;

  constructor(args: MultiHeadAttentionArgs) {
    super();
    const E = (this.embedDim = args.embedDim);
    this.numHeads = args.numHeads;
    if (E % this.numHeads !== 0) throw new Error(`MultiHeadAttention: embedDim ${E} must be divisible by numHeads ${this.numHeads}`);
    this.kdim = args.kdim ?? E;
    this.vdim = args.vdim ?? E;
    this.hasBias = args.bias ?? true;
    this.packed = this.kdim === E && this.vdim === E;
    // Xavier-uniform [out, in], kept transposed ([in, out]).
    const t = (out: number, inF: number) => ({ shape: [inF, out], init: () => tf.tidy(() => tf.transpose(xavierUniform([out, inF]))) });
    if (this.packed) {
      this.registerParameter('in_proj_weight', t(3 * E, E), { layout: 'transposed' });
    } else {
      this.registerParameter('q_proj_weight', t(E, E), { layout: 'transposed' });
      this.registerParameter('k_proj_weight', t(E, this.kdim), { layout: 'transposed' });
      this.registerParameter('v_proj_weight', t(E, this.vdim), { layout: 'transposed' });
    }
    if (this.hasBias) this.registerParameter('in_proj_bias', { shape: [3 * E], init: () => tf.zeros([3 * E]) });
    this.outProj = this.registerModule('out_proj', new Linear({ inFeatures: E, outFeatures: E, bias: this.hasBias, biasInit: 'zeros' }));
  }

  /**
   * Attention of `query` over `key`/`value`.
   * @param query `[batch, queries, E]`
   * @param key `[batch, keys, kdim]`
   * @param value `[batch, keys, vdim]`
   * @returns `[batch, queries, E]`
   */
  forward(query: tf.Tensor, key: tf.Tensor, value: tf.Tensor, masks: MultiHeadAttentionMasks = {}): tf.Tensor {
    const E = this.embedDim;
    assertShape(query, [null, null, E], 'MultiHeadAttention query', ['batch', 'queries', 'embedDim']);
    const b = query.shape[0]!;
    assertShape(key, [b, null, this.kdim], 'MultiHeadAttention key', ['batch', 'keys', 'kdim']);
    const s = key.shape[1]!;
    assertShape(value, [b, s, this.vdim], 'MultiHeadAttention value', ['batch', 'keys', 'vdim']);
    assertDtype(query, ['float32'], 'MultiHeadAttention query');
    assertDtype(key, ['float32'], 'MultiHeadAttention key');
    assertDtype(value, ['float32'], 'MultiHeadAttention value');
    const n = query.shape[1]!;
    return tf.tidy(() => {
      const [q, k, v] = this.project(query, key, value);
      const allowed: tf.Tensor[] = [];
      const additive: tf.Tensor[] = [];
      const { keyPaddingMask, attnMask } = masks;
      if (keyPaddingMask) {
        assertShape(keyPaddingMask, [b, s], 'MultiHeadAttention keyPaddingMask', ['batch', 'keys']);
        const m = tf.reshape(keyPaddingMask, [b, 1, 1, s]);
        (m.dtype === 'bool' ? allowed : additive).push(m.dtype === 'bool' ? tf.logicalNot(m) : tf.cast(m, 'float32'));
      }
      if (attnMask) {
        let m: tf.Tensor;
        if (attnMask.rank === 2) {
          assertShape(attnMask, [n, s], 'MultiHeadAttention attnMask', ['queries', 'keys']);
          m = attnMask;
        } else {
          assertShape(attnMask, [b * this.numHeads, n, s], 'MultiHeadAttention attnMask', ['batch·heads', 'queries', 'keys']);
          m = tf.reshape(attnMask, [b, this.numHeads, n, s]);
        }
        (m.dtype === 'bool' ? allowed : additive).push(m.dtype === 'bool' ? tf.logicalNot(m) : tf.cast(m, 'float32'));
      }
      const out = scaledDotProductAttention(q, k, v, {
        heads: this.numHeads,
        allowed: allowed.length ? allowed.reduce((a, c) => tf.logicalAnd(a, c)) : undefined,
        additiveMask: additive.length ? additive.reduce((a, c) => tf.add(a, c)) : undefined,
      });
      return this.outProj.forward(out);
    });
  }

  private project(query: tf.Tensor, key: tf.Tensor, value: tf.Tensor): [tf.Tensor, tf.Tensor, tf.Tensor] {
    const E = this.embedDim;
    const bias = this.hasBias ? this.parameter('in_proj_bias') : null;
    if (!this.packed) {
      const [bq, bk, bv] = bias ? tf.split(bias, 3) : [null, null, null];
      return [
        linear(query, this.parameter('q_proj_weight'), bq ?? null),
        linear(key, this.parameter('k_proj_weight'), bk ?? null),
        linear(value, this.parameter('v_proj_weight'), bv ?? null),
      ];
    }
    const w = this.parameter('in_proj_weight'); // [E, 3E]: columns [q | k | v]
    if (query === key && key === value) {
      // Self-attention: one matMul for q, k and v.
      const qkv = linear(query, w, bias);
      return tf.split(qkv, 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
    }
    // One split of the weight (and bias), not a slice per part: the gradient of a split is one
    // concat of the parts' gradients, that of each slice a zero-padded copy of the whole [E, 3E]
    // weight, added up (~15 ms a step on xattn_seed's [2048, 6144]).
    if (key === value) {
      const [wq, wkv] = tf.split(w, [E, 2 * E], 1);
      const [bq, bkv] = bias ? tf.split(bias, [E, 2 * E]) : [null, null];
      const kv = linear(key, wkv!, bkv ?? null);
      const [k, v] = tf.split(kv, 2, -1);
      return [linear(query, wq!, bq ?? null), k!, v!];
    }
    const [wq, wk, wv] = tf.split(w, 3, 1);
    const [bq, bk, bv] = bias ? tf.split(bias, 3) : [null, null, null];
    return [linear(query, wq!, bq ?? null), linear(key, wk!, bk ?? null), linear(value, wv!, bv ?? null)];
  }
}
