import * as tf from '@tensorflow/tfjs-core';
import { readbackChecksEnabled } from './readback-checks';
import { assertShape } from './shape-checks';

/** The label value that {@link crossEntropy} skips, as PyTorch's `ignore_index`. */
export const IGNORE_INDEX = -100;

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /**
   * PyTorch's `label_smoothing` ε: the target is `(1 - ε)·onehot + ε/C`. Default: `0`.
   */
  labelSmoothing?: number;
}

/**
 * `torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, label_smoothing=ε)`
 * with mean reduction over the labels that are not {@link IGNORE_INDEX}:
 * `loss_n = (1 - ε)·(-log p[n, y_n]) + ε·mean_c(-log p[n, c])`. With no label left the loss
 * is `0` (PyTorch gives NaN). The labels are checked on the host: numbers as given, a tensor
 * after one read-back (skipped inside `withoutReadbackChecks`); the loss itself is
 * computed on the device.
 *
 * @param logits `[N, C]`
 * @param labels int32 `[N]` (a tensor or numbers) in `[0, C)` or `-100`
 * @returns a scalar
 *
 * @example
 * ```ts
 * crossEntropy(tf.tensor2d([[2, 0], [0, 2]]), [0, -100]).dataSync(); // [0.1269]  = -log(e²/(e²+1))
 * ```
 */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor | readonly number[], options: CrossEntropyOptions = {}): tf.Scalar {
  assertShape(logits, [null, null], 'crossEntropy logits', ['N', 'classes']);
  const [n, c] = logits.shape as [number, number];
  const eps = options.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
  const count = Array.isArray(labels) ? labels.length : (labels as tf.Tensor).size;
  if (count !== n) throw new Error(`crossEntropy: expected ${n} labels (one per logits row), got ${count}`);
  if (Array.isArray(labels)) checkLabels(labels as readonly number[], c);
  else {
    // one read-back of the labels to check them (skipped inside withoutReadbackChecks: the caller checked them)
    if (readbackChecksEnabled()) checkLabels((labels as tf.Tensor).dataSync(), c);
  }
  return tf.tidy(() => {
    // labels → int32 on the device (no read-back): valid rows, their count, the one-hot targets
    const y = Array.isArray(labels) ? tf.tensor1d(labels as number[], 'int32') : tf.cast(tf.reshape(labels as tf.Tensor, [n]), 'int32');
    const isValid = tf.notEqual(y, tf.scalar(IGNORE_INDEX, 'int32'));
    const valid = tf.cast(isValid, 'float32'); // [N] 0/1
    const validCount = tf.maximum(tf.sum(valid), 1);
    const logp = tf.logSoftmax(logits, -1); // [N, C]
    // int32 one-hot then cast: wasm's OneHot kernel ignores a float32 dtype argument
    const target = tf.cast(tf.oneHot(tf.where(isValid, y, tf.zerosLike(y)), c), 'float32'); // [N, C]
    const nll = tf.neg(tf.sum(tf.mul(target, logp), -1)); // [N]
    const perRow = eps > 0 ? tf.add(tf.mul(1 - eps, nll), tf.mul(eps, tf.neg(tf.mean(logp, -1)))) : nll; // [N]
    return tf.div(tf.sum(tf.mul(perRow, valid)), validCount) as tf.Scalar;
  });
}

function checkLabels(values: ArrayLike<number>, c: number): void {
  for (let i = 0; i < values.length; i++) {
    const y = values[i]!;
    if (y !== IGNORE_INDEX && !(Number.isInteger(y) && y >= 0 && y < c)) throw new Error(`crossEntropy: labels must be in [0, ${c}) or ${IGNORE_INDEX}, got ${y}`);
  }
}
