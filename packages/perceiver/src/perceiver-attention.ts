import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Linear, Module, assertShape, scaledDotProductAttention } from '@vlm/core';

/** Constructor arguments of {@link PerceiverAttention}. */
export interface PerceiverAttentionArgs {
  /** Width of the media tokens and of the latents. */
  dim: number;
  /** Width of each head. Default: `64`. */
  dimHead?: number;
  /** Number of heads. Default: `8`. */
  heads?: number;
}

/**
 * Flamingo's Perceiver attention: the latents attend to the concatenation of the media tokens
 * and themselves, with separate norms and bias-free projections. The residual is the
 * caller's (see {@link FlamingoPerceiverResampler}).
 *
 * ```text
 * xm = norm_media(x); lm = norm_latents(latents)
 * q = to_q(lm); k, v = to_kv([xm; lm]).chunk(2, -1)          rows of to_kv: [k; v]
 * out = to_out(concat_h softmax(q_h·k_hᵀ / √dimHead)·v_h)
 * ```
 *
 * State-dict keys: `norm_media.{weight,bias}`, `norm_latents.{weight,bias}`, `to_q.weight`
 * `[inner, dim]`, `to_kv.weight` `[2·inner, dim]`, `to_out.weight` `[dim, inner]`
 * (`inner = heads·dimHead`).
 *
 * @example
 * ```ts
 * const attn = new PerceiverAttention({ dim: 32, dimHead: 8, heads: 4 });
 * attn.forward(tf.randomNormal([4, 17, 32]), tf.randomNormal([4, 6, 32])).shape; // [4, 6, 32]
 * ```
 */
export class PerceiverAttention extends Module {
  /** Token width. */
  readonly dim: number;
  /** Width of each head. */
  readonly dimHead: number;
  /** Number of heads. */
  readonly heads: number;
  /** LayerNorm of the media tokens (`norm_media`). */
  readonly normMedia: LayerNorm;
  /** LayerNorm of the latents (`norm_latents`). */
  readonly normLatents: LayerNorm;
  /** Query projection (`to_q`, no bias). */
  readonly toQ: Linear;
  /** Fused key/value projection (`to_kv`, no bias, rows `[k; v]`). */
  readonly toKv: Linear;
  /** Output projection (`to_out`, no bias). */
  readonly toOut: Linear;

  constructor(args: PerceiverAttentionArgs) {
    super();
    this.dim = args.dim;
    this.dimHead = args.dimHead ?? 64;
    this.heads = args.heads ?? 8;
    const inner = this.dimHead * this.heads;
    this.normMedia = this.registerModule('norm_media', new LayerNorm({ dim: this.dim }));
    this.normLatents = this.registerModule('norm_latents', new LayerNorm({ dim: this.dim }));
    this.toQ = this.registerModule('to_q', new Linear({ inFeatures: this.dim, outFeatures: inner, bias: false }));
    this.toKv = this.registerModule('to_kv', new Linear({ inFeatures: this.dim, outFeatures: 2 * inner, bias: false }));
    this.toOut = this.registerModule('to_out', new Linear({ inFeatures: inner, outFeatures: this.dim, bias: false }));
  }

  /**
   * @param x media tokens `[batch, tokens, dim]`
   * @param latents `[batch, latents, dim]`
   * @returns `[batch, latents, dim]` (no residual)
   */
  forward(x: tf.Tensor, latents: tf.Tensor): tf.Tensor {
    assertShape(x, [null, null, this.dim], 'PerceiverAttention media', ['batch', 'tokens', 'dim']);
    assertShape(latents, [x.shape[0], null, this.dim], 'PerceiverAttention latents', ['batch', 'latents', 'dim']);
    return tf.tidy(() => {
      const xm = this.normMedia.forward(x);
      const lm = this.normLatents.forward(latents);
      const q = this.toQ.forward(lm); // [b, n2, inner]
      const [k, v] = tf.split(this.toKv.forward(tf.concat([xm, lm], 1)), 2, -1) as [tf.Tensor, tf.Tensor]; // [b, n1+n2, inner]
      return this.toOut.forward(scaledDotProductAttention(q, k, v, { heads: this.heads, scale: this.dimHead ** -0.5 }));
    });
  }
}
