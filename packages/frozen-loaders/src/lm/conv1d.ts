import * as tf from '@tensorflow/tfjs-core';
import { Module, linear, assertShape } from '@vlm/core';

/** Constructor arguments of {@link Conv1D}. */
export interface Conv1DArgs {
  /** Size of the last input dimension. */
  inFeatures: number;
  /** Size of the last output dimension. */
  outFeatures: number;
}

/**
 * GPT-2's `Conv1D`: a linear layer whose PyTorch `weight` is stored `[in, out]` (not
 * `nn.Linear`'s `[out, in]`), so `y = x · W + b`. State-dict keys `weight` `[in, out]`,
 * `bias` `[out]`. The kernel is kept as is, which is already the layout core's `linear` wants.
 *
 * @example
 * ```ts
 * const cAttn = new Conv1D({ inFeatures: 32, outFeatures: 96 });
 * cAttn.stateDictShapes(); // { weight: [32, 96], bias: [96] }
 * cAttn.forward(tf.zeros([2, 7, 32])).shape; // [2, 7, 96]
 * ```
 */
export class Conv1D extends Module {
  /** Size of the last input dimension (rows of `weight`). */
  readonly inFeatures: number;
  /** Size of the last output dimension (columns of `weight`, length of `bias`). */
  readonly outFeatures: number;

  constructor(args: Conv1DArgs) {
    super();
    this.inFeatures = args.inFeatures;
    this.outFeatures = args.outFeatures;
    const [inF, outF] = [this.inFeatures, this.outFeatures];
    this.registerParameter('weight', { shape: [inF, outF], init: () => tf.randomNormal([inF, outF], 0, 0.02) });
    this.registerParameter('bias', { shape: [outF], init: () => tf.zeros([outF]) });
  }

  /** `[..., in] → [..., out]`. */
  forward(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.inFeatures) assertShape(x, [...x.shape.slice(0, -1), this.inFeatures], 'Conv1D input');
    return linear(x, this.parameter('weight'), this.parameter('bias'));
  }
}
