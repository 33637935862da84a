import * as tf from '@tensorflow/tfjs-core';

/** What {@link clipGradNorm} returns. */
export interface ClipGradNormResult {
  /** The clipped gradients, by the same keys: new tensors owned by the caller. */
  grads: tf.NamedTensorMap;
  /** The total norm BEFORE clipping (may be NaN or Infinity). */
  totalNorm: number;
  /** Each gradient's own L2 norm before clipping, by key (used to name a non-finite gradient). */
  norms: Record<string, number>;
}

/**
 * Global-norm gradient clipping with `torch.nn.utils.clip_grad_norm_` semantics (L2): the total
 * norm is the norm of the per-gradient norms; every gradient is multiplied by
 * `min(1, maxNorm / (totalNorm + 1e-6))`. Returns the norm BEFORE clipping. The input tensors
 * are not changed or disposed. `maxNorm = Infinity` only measures.
 *
 * @example
 * ```ts
 * const { grads: clipped, totalNorm } = clipGradNorm(grads, 1.0);
 * optimizer.step(clipped);
 * ```
 */
export function clipGradNorm(grads: tf.NamedTensorMap, maxNorm: number): ClipGradNormResult {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const keys = Object.keys(grads);
  if (keys.length === 0) return { grads: {}, totalNorm: 0, norms: {} };
  const perTensor = tf.tidy(() => tf.stack(keys.map((k) => tf.norm(grads[k]!))));
  const values = perTensor.dataSync();
  const total = tf.tidy(() => tf.norm(perTensor));
  const totalNorm = total.dataSync()[0]!;
  perTensor.dispose();
  total.dispose();
  // PyTorch computes the coefficient in float32: max_norm / (total_norm + 1e-6), clamped to 1.
  const coef = Math.min(1, Math.fround(Math.fround(maxNorm) / Math.fround(totalNorm + Math.fround(1e-6))));
  const out: tf.NamedTensorMap = {};
  for (const k of keys) out[k] = coef < 1 ? tf.mul(grads[k]!, coef) : tf.clone(grads[k]!);
  return { grads: out, totalNorm, norms: Object.fromEntries(keys.map((k, i) => [k, values[i]!])) };
}
