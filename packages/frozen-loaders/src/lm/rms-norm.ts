import * as tf from '@tensorflow/tfjs-core';
import { Module, assertShape } from '@vlm/core';

/** Constructor arguments of {@link RMSNorm}. */
export interface RMSNormArgs {
  /** Size of the normalised (last) dimension. */
  dim: number;
  /** Added to the mean square. Default: `1e-6`. */
  eps?: number;
}

/**
 * Root-mean-square norm as LLaMA's `LlamaRMSNorm`: `x · rsqrt(mean(x²) + eps) · weight`,
 * computed in float32. State-dict key `weight` `[dim]`.
 *
 * @example
 * ```ts
 * const norm = new RMSNorm({ dim: 48, eps: 1e-6 });
 * norm.forward(tf.randomNormal([2, 7, 48])).shape; // [2, 7, 48]
 * ```
 */
export class RMSNorm extends Module {
  /** Size of the normalised (last) dimension; `weight` is `[dim]`. */
  readonly dim: number;
  /** Added to the mean square before the reciprocal square root. Default: `1e-6`. */
  readonly eps: number;

  constructor(args: RMSNormArgs) {
    super();
    this.dim = args.dim;
    this.eps = args.eps ?? 1e-6;
    this.registerParameter('weight', { shape: [this.dim], init: () => tf.ones([this.dim]) });
  }

  /** `[..., dim] → [..., dim]`. */
  forward(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.dim) assertShape(x, [...x.shape.slice(0, -1), this.dim], 'RMSNorm input');
    return tf.tidy(() => {
      const meanSquare = tf.mean(tf.square(x), -1, true);
      return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, this.eps))), this.parameter('weight'));
    });
  }
}
