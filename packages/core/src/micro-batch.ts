import * as tf from '@tensorflow/tfjs-core';

/** Result of {@link microBatchGrads}: new tensors owned by the caller. */
export interface MicroBatchGrads {
  /** The loss of the whole batch (the sum of the micro-batch losses). */
  value: tf.Scalar;
  /** Gradient of `value` for every variable, by variable name. */
  grads: tf.NamedTensorMap;
}

/**
 * `tf.variableGrads` of a loss that is a SUM over the batch, computed `microBatch` rows at a
 * time with the gradients accumulated: equal to the full-batch gradients (up to float
 * summation order), with the memory of one micro-batch. TF.js keeps every backward
 * intermediate until the backward ends, so a batch whose training step does not fit the
 * heap (wasm32: 4 GB) trains this way. For a mean loss, divide by the full batch size
 * inside `loss` (not by the micro-batch size).
 *
 * @param loss maps a micro-batch (the rows of every input) to a scalar.
 * @param inputs batch-major tensors (the first dimension of each is the batch).
 * @param microBatch rows per micro-batch (the last may be smaller).
 * @param varList variables to differentiate. Default: every trainable variable.
 *
 * @example
 * ```ts
 * const { value, grads } = microBatchGrads(([x, w]) => tf.sum(tf.mul(model.forward(x), w)), [x, w], 4, model.parameters());
 * ```
 */
export function microBatchGrads(loss: (batch: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[], microBatch: number, varList?: tf.Variable[]): MicroBatchGrads {
  const B = inputs[0]?.shape[0];
  if (B === undefined || inputs.some((x) => x.shape[0] !== B)) {
    throw new Error(`microBatchGrads: every input needs the same batch (first) dimension, got ${inputs.map((x) => `[${x.shape}]`).join(', ')}`);
  }
  if (!(microBatch >= 1)) throw new Error(`microBatchGrads: microBatch must be >= 1, got ${microBatch}`);
  let value: tf.Scalar | null = null;
  let grads: tf.NamedTensorMap | null = null;
  for (let s = 0; s < Math.max(B, 1); s += microBatch) {
    const n = Math.min(microBatch, B - s);
    const part = tf.variableGrads(() => tf.tidy(() => loss(n === B ? inputs : inputs.map((x) => tf.slice(x, s, n)))), varList);
    if (!value || !grads) {
      ({ value, grads } = part);
      continue;
    }
    // Accumulate, freeing each micro-batch's gradients right away (peak: two copies of the grads).
    const prev: tf.NamedTensorMap = grads;
    grads = Object.fromEntries(Object.entries(part.grads).map(([k, g]) => [k, tf.add(prev[k]!, g)]));
    const v: tf.Scalar = tf.add(value, part.value);
    tf.dispose([value, part.value, ...Object.values(prev), ...Object.values(part.grads)]);
    value = v;
  }
  return { value: value!, grads: grads! };
}
