import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, gelu } from '@vlm/core';
import type { ResolvedQFormerArgs } from './config';
import { QFormerSelfOutput } from './attention';

/**
 * The first half of a BERT feed-forward block (Hugging Face `Blip2QFormerIntermediate`):
 * `gelu(dense(h))` with the exact erf GELU. State-dict keys `dense.{weight,bias}` `[I, H]`, `[I]`.
 *
 * @example
 * ```ts
 * new QFormerIntermediate(resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4, intermediateSize: 64 })).forward(tf.zeros([2, 8, 32])).shape; // [2, 8, 64]
 * ```
 */
export class QFormerIntermediate extends Module {
  /** Linear `H → I` (`intermediateSize`) before the GELU (HF `dense`, weight `[I, H]`). */
  readonly dense: Linear;

  constructor(args: ResolvedQFormerArgs) {
    super();
    this.dense = this.registerModule('dense', new Linear({ inFeatures: args.hiddenSize, outFeatures: args.intermediateSize }));
  }

  /** `[b, n, H] → [b, n, I]`. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => gelu(this.dense.forward(x)));
  }
}

/**
 * The second half of a BERT feed-forward block (Hugging Face `Blip2QFormerOutput`):
 * `LayerNorm(dense(intermediate) + input)`, `dense: I → H`. State-dict keys
 * `dense.{weight,bias}` `[H, I]`, `[H]` and `LayerNorm.{weight,bias}` `[H]`.
 *
 * @example
 * ```ts
 * const out = new QFormerOutput(resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4, intermediateSize: 64 }));
 * out.forward(tf.zeros([2, 8, 64]), tf.zeros([2, 8, 32])).shape; // [2, 8, 32]
 * ```
 */
export class QFormerOutput extends QFormerSelfOutput {
  constructor(args: ResolvedQFormerArgs) {
    super(args, args.intermediateSize);
  }
}
