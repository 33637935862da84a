import type * as tf from '@tensorflow/tfjs-core';

/** A contiguous range of rows. */
export interface Rows {
  start: number;
  count: number;
}

/**
 * Splits `total` rows (or parameter values) into `parts` contiguous ranges whose sizes differ by
 * at most one; fewer ranges when `total < parts` (no empty one).
 */
export function splitRows(total: number, parts: number): Rows[] {
  const n = Math.max(1, Math.min(parts, total));
  return Array.from({ length: n }, (_, i) => {
    const start = Math.floor((i * total) / n);
    return { start, count: Math.floor(((i + 1) * total) / n) - start };
  });
}

/** The common first dimension of `inputs` (the batch), or an Error naming the shapes. */
export function batchSize(inputs: tf.Tensor[], caller: string): number {
  const B = inputs[0]?.shape[0];
  if (B === undefined || B < 1 || inputs.some((x) => x.shape[0] !== B)) {
    throw new Error(`${caller}: every input needs the same batch (first) dimension >= 1, got ${inputs.map((x) => `[${x.shape.join(', ')}]`).join(', ') || 'no inputs'}`);
  }
  return B;
}
