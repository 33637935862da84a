import * as tf from '@tensorflow/tfjs-core';
import { FeedForward, LayerNorm, Module, MultiHeadAttention } from '@vlm/core';

/** Constructor arguments of {@link PerceiverResamplerLayer}. */
export interface PerceiverResamplerLayerArgs {
  /** Width of the queries and of the vision tokens. */
  dim: number;
  /** Heads of both attentions; `dim` must be divisible by it. Default: `8`. */
  numHeads?: number;
  /** Hidden width of the feed-forward as a multiple of `dim`. Default: `4`. */
  ffMult?: number;
}

/**
 * One layer of the design's {@link PerceiverResampler}: three pre-norm residual blocks on the
 * queries, with `torch.nn.MultiheadAttention` weights.
 *
 * ```text
 * q = q + cross_attn(cross_norm(q), vis, vis)     keys/values: the raw vision tokens
 * q = q + self_attn(self_norm(q))                 among the queries
 * q = q + ffn(ffn_norm(q))                        Linear, GELU (erf), Linear
 * ```
 *
 * State-dict keys: `cross_attn.{in_proj_weight,in_proj_bias,out_proj.weight,out_proj.bias}`,
 * `cross_norm.{weight,bias}`, `self_attn.*`, `self_norm.*`, `ffn.0.*`, `ffn.2.*`, `ffn_norm.*`.
 *
 * @example
 * ```ts
 * const layer = new PerceiverResamplerLayer({ dim: 32, numHeads: 4 });
 * layer.forward(tf.zeros([2, 8, 32]), tf.randomNormal([2, 17, 32])).shape; // [2, 8, 32]
 * ```
 */
export class PerceiverResamplerLayer extends Module {
  /** Queries → vision tokens (`cross_attn`). */
  readonly crossAttn: MultiHeadAttention;
  /** Pre-norm of the cross-attention (`cross_norm`). */
  readonly crossNorm: LayerNorm;
  /** Queries → queries (`self_attn`). */
  readonly selfAttn: MultiHeadAttention;
  /** Pre-norm of the self-attention (`self_norm`). */
  readonly selfNorm: LayerNorm;
  /** The MLP (`ffn`: `0` Linear, `1` GELU, `2` Linear). */
  readonly ffn: FeedForward;
  /** Pre-norm of the MLP (`ffn_norm`). */
  readonly ffnNorm: LayerNorm;

  constructor(args: PerceiverResamplerLayerArgs) {
    super();
    const { dim } = args;
    const numHeads = args.numHeads ?? 8;
    this.crossAttn = this.registerModule('cross_attn', new MultiHeadAttention({ embedDim: dim, numHeads }));
    this.crossNorm = this.registerModule('cross_norm', new LayerNorm({ dim }));
    this.selfAttn = this.registerModule('self_attn', new MultiHeadAttention({ embedDim: dim, numHeads }));
    this.selfNorm = this.registerModule('self_norm', new LayerNorm({ dim }));
    this.ffn = this.registerModule('ffn', new FeedForward({ dim, mult: args.ffMult ?? 4 }));
    this.ffnNorm = this.registerModule('ffn_norm', new LayerNorm({ dim }));
  }

  /**
   * @param queries `[batch, queries, dim]`
   * @param vision `[batch, tokens, dim]`
   * @param keyPaddingMask optional bool `[batch, tokens]`, **true marks padding** (PyTorch's `key_padding_mask`).
   * @returns `[batch, queries, dim]`
   */
  forward(queries: tf.Tensor, vision: tf.Tensor, keyPaddingMask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = queries;
      const qc = this.crossNorm.forward(h);
      h = tf.add(h, this.crossAttn.forward(qc, vision, vision, { keyPaddingMask }));
      const qs = this.selfNorm.forward(h);
      h = tf.add(h, this.selfAttn.forward(qs, qs, qs));
      return tf.add(h, this.ffn.forward(this.ffnNorm.forward(h)));
    });
  }
}
