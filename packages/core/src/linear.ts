import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { uniformFanIn } from './initializers';
import { assertDtype, assertShape } from './shape-checks';
import { linear2d } from './matmul';

/** Constructor arguments of {@link Linear}. */
export interface LinearArgs {
  /** Size of the last input dimension. */
  inFeatures: number;
  /** Size of the last output dimension. */
  outFeatures: number;
  /** Whether to learn an additive bias. Default: `true`. */
  bias?: boolean;
  /**
   * How the bias starts: `'uniform'` as `torch.nn.Linear` (`U(±1/√in)`), or `'zeros'` as the
   * `out_proj` of `torch.nn.MultiheadAttention`. Default: `'uniform'`.
   */
  biasInit?: 'uniform' | 'zeros';
}

/**
 * `y = x · Wᵀ + b` over the last dimension, as `torch.nn.Linear`: state-dict keys `weight`
 * `[out, in]` and `bias` `[out]`.
 *
 * The kernel is kept as `[in, out]` so the forward is one 2-D matMul without transpose flags
 * (the fast XNNPACK path on wasm), whatever the input rank; the gradient uses explicit
 * transposes for the same reason (see {@link linear}).
 *
 * @example
 * ```ts
 * const fc = new Linear({ inFeatures: 32, outFeatures: 64 });
 * fc.forward(tf.zeros([2, 17, 32])).shape; // [2, 17, 64]
 * ```
 */
export class Linear extends Module {
  /** Size of the last input dimension. */
  readonly inFeatures: number;
  /** Size of the last output dimension. */
  readonly outFeatures: number;
  /** Whether the layer has a `bias`. */
  readonly hasBias: boolean;

  constructor(args: LinearArgs) {
    super();
    this.inFeatures = args.inFeatures;
    this.outFeatures = args.outFeatures;
    this.hasBias = args.bias ?? true;
    const [inF, outF] = [this.inFeatures, this.outFeatures];
    this.registerParameter('weight', { shape: [inF, outF], init: () => tf.tidy(() => tf.transpose(uniformFanIn([outF, inF], inF))) }, {
      layout: 'transposed',
    });
    if (this.hasBias) this.registerParameter('bias', { shape: [outF], init: () => (args.biasInit === 'zeros' ? tf.zeros([outF]) : uniformFanIn([outF], inF)) });
  }

  /** The kernel, `[in, out]` (the transpose of the PyTorch `weight`). */
  get kernel(): tf.Variable {
    return this.parameter('weight');
  }

  /** The bias `[out]`, or `null` when built with `bias: false`. */
  get bias(): tf.Variable | null {
    return this.hasBias ? this.parameter('bias') : null;
  }

  /** `[..., in] → [..., out]`. */
  forward(x: tf.Tensor): tf.Tensor {
    if (!(x instanceof tf.Tensor) || x.isDisposed) assertShape(x, [this.inFeatures], 'Linear input'); // throws, naming what came
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      assertShape(x, [...x.shape.slice(0, -1), this.inFeatures], 'Linear input');
    }
    if (x.dtype !== 'float32') assertDtype(x, ['float32'], 'Linear input');
    return linear(x, this.kernel, this.bias);
  }
}

/**
 * `x · kernel + bias` over the last dimension of `x`, computed as one 2-D matMul (with the
 * bias fused in). Its gradient is written with plain matMuls ({@link linear2d}): TF.js's stock
 * matMul gradient uses transpose flags, which leave wasm's fast path; and `dX` is only computed
 * when `x` needs a gradient (not for frozen features).
 *
 * @param x `[..., in]`
 * @param kernel `[in, out]`
 * @param bias `[out]` or `null`
 * @returns `[..., out]`
 */
export function linear(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  return tf.tidy(() => {
    const [inF, outF] = kernel.shape as [number, number];
    const lead = x.shape.slice(0, -1);
    const y2 = linear2d(tf.reshape(x, [-1, inF]), kernel, bias);
    return tf.reshape(y2, [...lead, outF]);
  });
}
