import * as tf from '@tensorflow/tfjs-core';
import type { NamedParameter } from './named-parameter';
import { Optimizer, type OptimizerOptions, type OptimizerParams } from './optimizer';

/** Hyperparameters of {@link AdamW} and {@link Adam} (PyTorch's names and defaults). */
export interface AdamOptions extends OptimizerOptions {
  /** Learning rate. Default: `1e-3`. */
  lr: number;
  /** `(β1, β2)`. Default: `[0.9, 0.999]`. */
  betas?: [number, number];
  /** Added to the denominator. Default: `1e-8`. */
  eps?: number;
  /** Weight decay: decoupled for AdamW (default `1e-2`), an L2 term for Adam (default `0`). */
  weightDecay?: number;
}

/**
 * The moment updates shared by Adam and AdamW, in `torch.optim` order (1.13, single-tensor):
 * `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g·g`, then
 * `p −= (lr / (1−β1^t)) · m / (sqrt(v) / sqrt(1−β2^t) + eps)`. Returns the new parameter value.
 */
function adamUpdate(m: tf.Variable, v: tf.Variable, param: tf.Tensor, grad: tf.Tensor, lr: number, step: number, betas: [number, number], eps: number): tf.Tensor {
  const [beta1, beta2] = betas;
  const mNew = tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1));
  const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.mul(grad, grad), 1 - beta2));
  m.assign(mNew);
  v.assign(vNew);
  const stepSize = lr / (1 - beta1 ** step);
  const denom = tf.add(tf.div(tf.sqrt(vNew), Math.sqrt(1 - beta2 ** step)), eps);
  return tf.sub(param, tf.div(tf.mul(mNew, stepSize), denom));
}

function checkAdam(name: string, betas: [number, number], eps: number): void {
  if (!(betas.length === 2 && betas.every((b) => b >= 0 && b < 1))) throw new Error(`${name}: betas must be two numbers in [0, 1), got [${betas}]`);
  if (!(eps >= 0)) throw new Error(`${name}: eps must be >= 0, got ${eps}`);
}

/**
 * AdamW (Loshchilov & Hutter), numerically as `torch.optim.AdamW` (`amsgrad=False`,
 * `maximize=False`): decoupled weight decay `p ← p·(1 − lr·λ)` before the Adam step, bias
 * correction, `eps` added after the square root. Per-group `lr` and `weightDecay` (see
 * {@link paramGroups}); the state is `exp_avg` and `exp_avg_sq` per parameter, as PyTorch's.
 *
 * @example
 * ```ts
 * const optimizer = new AdamW(weightDecayGroups(namedParameters(bridge), { weightDecay: 0.1 }), { lr: 1e-4 });
 * const { value, grads } = tf.variableGrads(loss);
 * optimizer.step(grads);
 * ```
 */
export class AdamW extends Optimizer {
  /** {@inheritDoc Optimizer.kind} */
  readonly kind: string = 'AdamW';
  /** `(β1, β2)`. */
  readonly betas: [number, number];
  /** The denominator's epsilon. */
  readonly eps: number;

  /**
   * @param params the parameters or parameter groups.
   * @param options PyTorch's hyperparameters (`lr` 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2).
   */
  constructor(params: OptimizerParams, options: Partial<AdamOptions> = {}) {
    super(params, { lr: options.lr ?? 1e-3, weightDecay: options.weightDecay ?? 1e-2 });
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    checkAdam('AdamW', this.betas, this.eps);
  }

  protected override update(p: NamedParameter, grad: tf.Tensor, lr: number, weightDecay: number, step: number): void {
    const decayed = weightDecay !== 0 ? tf.mul(p.variable, 1 - lr * weightDecay) : p.variable;
    p.variable.assign(adamUpdate(this.slot(p, 'exp_avg'), this.slot(p, 'exp_avg_sq'), decayed, grad, lr, step, this.betas, this.eps));
  }
}

/**
 * Adam, numerically as `torch.optim.Adam` (`amsgrad=False`): weight decay, if any, is an L2 term
 * added to the gradient (`g + λ·p`), unlike {@link AdamW}.
 *
 * @example
 * ```ts
 * const optimizer = new Adam(namedParameters(bridge), { lr: 1e-3 });
 * ```
 */
export class Adam extends Optimizer {
  /** {@inheritDoc Optimizer.kind} */
  readonly kind: string = 'Adam';
  /** `(β1, β2)`. */
  readonly betas: [number, number];
  /** The denominator's epsilon. */
  readonly eps: number;

  /**
   * @param params the parameters or parameter groups.
   * @param options PyTorch's hyperparameters (`lr` 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0).
   */
  constructor(params: OptimizerParams, options: Partial<AdamOptions> = {}) {
    super(params, { lr: options.lr ?? 1e-3, weightDecay: options.weightDecay ?? 0 });
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    checkAdam('Adam', this.betas, this.eps);
  }

  protected override update(p: NamedParameter, grad: tf.Tensor, lr: number, weightDecay: number, step: number): void {
    const g = weightDecay !== 0 ? tf.add(grad, tf.mul(p.variable, weightDecay)) : grad;
    p.variable.assign(adamUpdate(this.slot(p, 'exp_avg'), this.slot(p, 'exp_avg_sq'), p.variable, g, lr, step, this.betas, this.eps));
  }
}
