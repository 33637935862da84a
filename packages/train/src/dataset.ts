import * as tf from '@tensorflow/tfjs-core';

/**
 * A data set the trainer draws batches from: `size` examples, and a function that builds the
 * batch of the given example indices. The trainer calls `batch` inside a `tf.tidy` (intermediate
 * tensors are freed) and disposes the batch's tensors after the step.
 */
export interface Dataset<B> {
  /** Number of examples. */
  readonly size: number;
  /** The batch of examples `indices` (in that order). */
  batch(indices: number[]): B;
}

/**
 * A data set of batch-major tensors (as `torch.utils.data.TensorDataset`): example `i` is row
 * `i` of every tensor; a batch is the rows gathered by index, as an object with the same keys.
 * The data set does not own the tensors.
 *
 * @example
 * ```ts
 * const data = tensorDataset({ features, inputIds, labels });
 * data.batch([3, 0]); // { features: rows 3 and 0, inputIds: …, labels: … }
 * ```
 */
export function tensorDataset<K extends string>(tensors: Record<K, tf.Tensor>): Dataset<Record<K, tf.Tensor>> {
  const entries = Object.entries(tensors) as Array<[K, tf.Tensor]>;
  if (entries.length === 0) throw new Error('tensorDataset: expected at least one tensor');
  const size = entries[0]![1].shape[0];
  for (const [k, t] of entries) {
    if (t.rank === 0 || t.shape[0] !== size) {
      throw new Error(`tensorDataset: every tensor needs the same first (example) dimension; '${entries[0]![0]}' has ${size}, '${k}' has shape [${t.shape}]`);
    }
  }
  if (!size) throw new Error('tensorDataset: the data set is empty (first dimension 0)');
  return {
    size,
    batch(indices: number[]) {
      for (const i of indices) if (!(Number.isInteger(i) && i >= 0 && i < size)) throw new Error(`tensorDataset: index ${i} out of range [0, ${size})`);
      return tf.tidy(() => {
        const idx = tf.tensor1d(indices, 'int32');
        return Object.fromEntries(entries.map(([k, t]) => [k, tf.gather(t, idx)])) as Record<K, tf.Tensor>;
      });
    },
  };
}
