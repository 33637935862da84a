import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { Linear } from './linear';
import { scaledDotProductAttention } from './attention';
import { assertDtype, assertShape } from './shape-checks';

/** Constructor arguments of {@link CrossAttention}. */
export interface CrossAttentionArgs {
  /** Query (and output) width. */
  dim: number;
  /** Width of the context that keys and values come from. Default: `dim`. */
  contextDim?: number;
  /** Width of each head. Default: `64`. */
  dimHead?: number;
  /** Number of heads. Default: `8`. */
  heads?: number;
}

/**
 * Multi-head attention with bias-free projections `to_q`, fused `to_kv` (rows `[k; v]`) and
 * `to_out`, the style of Flamingo, OpenFlamingo and lucidrains' modules. Norms and residuals
 * belong to the owner. State-dict keys: `to_q.weight` `[inner, dim]`, `to_kv.weight`
 * `[2·inner, contextDim]`, `to_out.weight` `[dim, inner]` with `inner = heads·dimHead`.
 *
 * @example
 * ```ts
 * const attn = new CrossAttention({ dim: 32, contextDim: 24, dimHead: 8, heads: 4 });
 * attn.forward(tf.zeros([2, 6, 32]), tf.zeros([2, 17, 24])).shape; // [2, 6, 32]
 * ```
 */
export class CrossAttention extends Module {
  /** Query and output width. */
  readonly dim: number;
  /** Width of the context keys and values are computed from. */
  readonly contextDim: number;
  /** Width of each head. */
  readonly dimHead: number;
  /** Number of heads. */
  readonly heads: number;
  /** `to_q`: `dim → heads·dimHead`, no bias. */
  readonly toQ: Linear;
  /** `to_kv`: `contextDim → 2·heads·dimHead` (keys, then values), no bias. */
  readonly toKv: Linear;
  /** `to_out`: `heads·dimHead → dim`, no bias. */
  readonly toOut: Linear;

  constructor(args: CrossAttentionArgs) {
    super();
    this.dim = args.dim;
    this.contextDim = args.contextDim ?? args.dim;
    this.dimHead = args.dimHead ?? 64;
    this.heads = args.heads ?? 8;
    const inner = this.dimHead * this.heads;
    this.toQ = this.registerModule('to_q', new Linear({ inFeatures: this.dim, outFeatures: inner, bias: false }));
    this.toKv = this.registerModule('to_kv', new Linear({ inFeatures: this.contextDim, outFeatures: 2 * inner, bias: false }));
    this.toOut = this.registerModule('to_out', new Linear({ inFeatures: inner, outFeatures: this.dim, bias: false }));
  }

  /**
   * @param x queries `[batch, n, dim]`
   * @param context keys/values `[batch, m, contextDim]`
   * @param allowed optional bool mask broadcastable to `[batch, heads, n, m]` (true = may attend)
   * @returns `[batch, n, dim]`
   */
  forward(x: tf.Tensor, context: tf.Tensor, allowed?: tf.Tensor): tf.Tensor {
    assertShape(x, [null, null, this.dim], 'CrossAttention input', ['batch', 'n', 'dim']);
    assertShape(context, [x.shape[0], null, this.contextDim], 'CrossAttention context', ['batch', 'm', 'contextDim']);
    assertDtype(x, ['float32'], 'CrossAttention input');
    assertDtype(context, ['float32'], 'CrossAttention context');
    return tf.tidy(() => {
      const q = this.toQ.forward(x);
      const [k, v] = tf.split(this.toKv.forward(context), 2, -1) as [tf.Tensor, tf.Tensor];
      const out = scaledDotProductAttention(q, k, v, { heads: this.heads, scale: this.dimHead ** -0.5, allowed });
      return this.toOut.forward(out);
    });
  }
}
