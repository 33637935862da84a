import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { assertShape } from './shape-checks';

/** Constructor arguments of {@link LayerNorm}. */
export interface LayerNormArgs {
  /** Size of the normalised (last) dimension. */
  dim: number;
  /** Added to the variance. Default: `1e-5` (PyTorch's; BERT and the Q-Former use `1e-12`). */
  eps?: number;
  /** Learn `weight` and `bias`. Default: `true`. */
  elementwiseAffine?: boolean;
}

/**
 * `torch.nn.LayerNorm` over the last dimension, with biased variance:
 * `(x - mean) / sqrt(var + eps) * weight + bias`. State-dict keys `weight`, `bias` `[dim]`.
 *
 * @example
 * ```ts
 * const ln = new LayerNorm({ dim: 32, eps: 1e-12 });
 * ln.forward(tf.randomNormal([2, 5, 32])).shape; // [2, 5, 32]
 * ```
 */
export class LayerNorm extends Module {
  /** Size of the normalised (last) dimension. */
  readonly dim: number;
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Whether `weight` and `bias` are learned. */
  readonly elementwiseAffine: boolean;

  constructor(args: LayerNormArgs) {
    super();
    this.dim = args.dim;
    this.eps = args.eps ?? 1e-5;
    this.elementwiseAffine = args.elementwiseAffine ?? true;
    if (this.elementwiseAffine) {
      this.registerParameter('weight', tf.ones([this.dim]));
      this.registerParameter('bias', tf.zeros([this.dim]));
    }
  }

  /** `[..., dim] → [..., dim]`. */
  forward(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.dim) assertShape(x, [...x.shape.slice(0, -1), this.dim], 'LayerNorm input');
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return this.elementwiseAffine ? tf.add(tf.mul(y, this.parameter('weight')), this.parameter('bias')) : y;
    });
  }
}
