import * as tf from '@tensorflow/tfjs-core';
import { microBatchGrads } from '@vlm/core';

/**
 * A loss and its gradients, as `tf.variableGrads` returns them: new tensors the trainer takes
 * over (and disposes). `grads` is keyed by `variable.name`; a variable with no entry gets no
 * update in that step.
 */
export interface LossAndGrads {
  /** The scalar loss of the batch. */
  value: tf.Scalar;
  /** Gradient of `value` for each variable, by `variable.name`. */
  grads: tf.NamedTensorMap;
}

/**
 * Where gradients come from: the loss and gradients of one batch for the given variables,
 * synchronously or as a promise. The default is {@link variableGradients} on the main thread;
 * `(batch) => dp.grads(batch)` plugs in `@vlm/data-parallel`'s workers, and
 * {@link microBatchGradients} accumulates over micro-batches.
 */
export type GradientSource<B> = (batch: B, variables: tf.Variable[]) => LossAndGrads | Promise<LossAndGrads>;

/**
 * The default gradient source: `tf.variableGrads(() => loss(batch), variables)` on this thread.
 *
 * @example
 * ```ts
 * const gradients = variableGradients((batch: Batch) => crossEntropy(model.forward(batch.x), batch.y));
 * ```
 */
export function variableGradients<B>(loss: (batch: B) => tf.Scalar): GradientSource<B> {
  return (batch, variables) => tf.variableGrads(() => tf.tidy(() => loss(batch)), variables);
}

/**
 * Gradient accumulation inside one batch with `@vlm/core`'s `microBatchGrads`: the batch (an
 * array of batch-major tensors) is run `microBatch` rows at a time and the gradients summed, so
 * a batch whose backward pass does not fit in memory still trains. `loss` must be a SUM over
 * rows (divide by the whole batch size inside it for a mean).
 *
 * @example
 * ```ts
 * const gradients = microBatchGradients(([x, y]) => tf.div(tf.sum(tf.square(tf.sub(model.forward(x), y))), 32), 8);
 * ```
 */
export function microBatchGradients(loss: (rows: tf.Tensor[]) => tf.Scalar, microBatch: number): GradientSource<tf.Tensor[]> {
  return (batch, variables) => microBatchGrads(loss, batch, microBatch, variables);
}
