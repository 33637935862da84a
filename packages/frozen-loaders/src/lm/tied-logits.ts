import * as tf from '@tensorflow/tfjs-core';
import { matMulTransposedB } from '@vlm/core';

/**
 * Logits of a head tied to an embedding table: `hidden · tableᵀ`, without a transpose flag
 * on stock wasm and without a second copy of the table (see core's `matMulTransposedB`).
 *
 * @param hidden `[..., D]`
 * @param table `[vocab, D]`
 * @returns `[..., vocab]`
 *
 * @example
 * ```ts
 * tiedLogits(tf.zeros([2, 5, 32]), wte.weight).shape; // [2, 5, 97] for a [97, 32] table
 * ```
 */
export function tiedLogits(hidden: tf.Tensor, table: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [vocab, d] = table.shape as [number, number];
    const lead = hidden.shape.slice(0, -1);
    return tf.reshape(matMulTransposedB(tf.reshape(hidden, [-1, d]), table), [...lead, vocab]);
  });
}
