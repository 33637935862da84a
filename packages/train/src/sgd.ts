import * as tf from '@tensorflow/tfjs-core';
import type { NamedParameter } from './named-parameter';
import { Optimizer, type OptimizerOptions, type OptimizerParams } from './optimizer';

/** Hyperparameters of {@link SGD} (PyTorch's names and defaults). */
export interface SGDOptions extends OptimizerOptions {
  /** Momentum factor. Default: `0`. */
  momentum?: number;
  /** Dampening of the momentum. Default: `0`. */
  dampening?: number;
  /** Nesterov momentum. Default: `false`. */
  nesterov?: boolean;
  /** L2 weight decay added to the gradient. Default: `0`. */
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with momentum, numerically as `torch.optim.SGD`: `g += λ·p`;
 * `buf = g` on the first step, then `buf = μ·buf + (1−dampening)·g`; Nesterov uses `g + μ·buf`;
 * `p −= lr·d`. The state is `momentum_buffer` per parameter (when momentum is on).
 *
 * @example
 * ```ts
 * const optimizer = new SGD(namedParameters(bridge), { lr: 0.1, momentum: 0.9 });
 * ```
 */
export class SGD extends Optimizer {
  /** {@inheritDoc Optimizer.kind} */
  readonly kind: string = 'SGD';
  /** Momentum factor. */
  readonly momentum: number;
  /** Momentum dampening. */
  readonly dampening: number;
  /** Nesterov momentum. */
  readonly nesterov: boolean;

  /**
   * @param params the parameters or parameter groups.
   * @param options `lr` (required), momentum, dampening, nesterov, weight decay.
   */
  constructor(params: OptimizerParams, options: SGDOptions) {
    super(params, { lr: options.lr, weightDecay: options.weightDecay ?? 0 });
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (!(this.momentum >= 0)) throw new Error(`SGD: momentum must be >= 0, got ${this.momentum}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new Error('SGD: Nesterov momentum requires a momentum > 0 and zero dampening');
  }

  protected override update(p: NamedParameter, grad: tf.Tensor, lr: number, weightDecay: number): void {
    let d = weightDecay !== 0 ? tf.add(grad, tf.mul(p.variable, weightDecay)) : grad;
    if (this.momentum !== 0) {
      const first = !this.hasSlot(p, 'momentum_buffer');
      const buf = this.slot(p, 'momentum_buffer', () => tf.clone(d));
      if (!first) buf.assign(tf.add(tf.mul(buf, this.momentum), tf.mul(d, 1 - this.dampening)));
      d = this.nesterov ? tf.add(d, tf.mul(buf, this.momentum)) : buf;
    }
    p.variable.assign(tf.sub(p.variable, tf.mul(d, lr)));
  }
}
