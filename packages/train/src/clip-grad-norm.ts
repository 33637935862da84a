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
  const norms = gradientNorms(grads, maxNorm);
  if (!norms) return { grads: {}, totalNorm: 0, norms: {} };
  let values: ArrayLike<number>;
  try {
    values = norms.dataSync();
  } finally {
    norms.dispose();
  }
  return clipByNorms(grads, maxNorm, values);
}

/**
 * {@link clipGradNorm} without a synchronous read-back: the norms come back with one `await`
 * (the total norm is computed on the device with them, in the same read), so the GPU is never stalled;
 * this is what {@link Trainer} uses, and what works on WebGPU. The same clipped gradients and
 * norms as {@link clipGradNorm}.
 *
 * @example
 * ```ts
 * const { grads: clipped, totalNorm } = await clipGradNormAsync(grads, 1.0);
 * optimizer.step(clipped);
 * tf.dispose(Object.values(clipped));
 * ```
 */
export async function clipGradNormAsync(grads: tf.NamedTensorMap, maxNorm: number): Promise<ClipGradNormResult> {
  const norms = gradientNorms(grads, maxNorm);
  if (!norms) return { grads: {}, totalNorm: 0, norms: {} };
  let values: ArrayLike<number>;
  try {
    values = await norms.data();
  } finally {
    norms.dispose();
  }
  return clipByNorms(grads, maxNorm, values);
}

// Each gradient's L2 norm and, last, the total norm (the norm of the norms): [keys + 1]; null without gradients.
// √(Σ g²) rather than tf.norm, which squares through Abs and Pow (a slow scalar kernel on wasm).
function gradientNorms(grads: tf.NamedTensorMap, maxNorm: number): tf.Tensor1D | null {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const keys = Object.keys(grads);
  if (keys.length === 0) return null;
  return tf.tidy(() => {
    const l2 = (t: tf.Tensor) => tf.sqrt(tf.sum(tf.square(t)));
    const perTensor = tf.stack(keys.map((k) => l2(grads[k]!)));
    return tf.concat([perTensor, tf.reshape(l2(perTensor), [1])]) as tf.Tensor1D;
  });
}

function clipByNorms(grads: tf.NamedTensorMap, maxNorm: number, values: ArrayLike<number>): ClipGradNormResult {
  const keys = Object.keys(grads);
  const totalNorm = values[keys.length]!;
  // PyTorch computes the coefficient in float32: max_norm / (total_norm + 1e-6), clamped to 1.
  const coef = Math.min(1, Math.fround(Math.fround(maxNorm) / Math.fround(totalNorm + Math.fround(1e-6))));
  const out: tf.NamedTensorMap = {};
  for (const k of keys) out[k] = coef < 1 ? tf.mul(grads[k]!, coef) : tf.clone(grads[k]!);
  return { grads: out, totalNorm, norms: Object.fromEntries(keys.map((k, i) => [k, values[i]!])) };
}
