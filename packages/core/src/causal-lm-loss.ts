import * as tf from '@tensorflow/tfjs-core';
import { assertShape } from './shape-checks';
import { crossEntropy, type CrossEntropyOptions } from './cross-entropy';

/** Options of {@link causalLmLoss}. */
export interface CausalLmLossOptions extends CrossEntropyOptions {
  /** Label smoothing (LAVIS' Q-Former LM loss uses `0.1`). Default: `0`. */
  labelSmoothing?: number;
}

/**
 * Causal language-modelling loss with the Hugging Face/LAVIS shift: the logits at position `t`
 * predict `labels[t + 1]`; labels equal to -100 are skipped; mean over the rest.
 * `CE(logits[:, :-1], labels[:, 1:])`.
 *
 * @param logits `[b, T, V]`
 * @param labels int32 `[b, T]`, aligned with the inputs (as {@link buildLmInputs} and `@vlm/qformer`'s `itgDecoderInputs` return them)
 *
 * @example
 * ```ts
 * causalLmLoss(tf.zeros([2, 5, 50]), tf.tensor2d([[1, 2, 3, 4, -100], [1, 2, -100, -100, -100]], undefined, 'int32')).dataSync(); // [log 50]
 * ```
 */
export function causalLmLoss(logits: tf.Tensor, labels: tf.Tensor, options: CausalLmLossOptions = {}): tf.Scalar {
  assertShape(logits, [null, null, null], 'causalLmLoss logits', ['batch', 'length', 'vocab']);
  const [b, T, V] = logits.shape as [number, number, number];
  assertShape(labels, [b, T], 'causalLmLoss labels', ['batch', 'length']);
  if (T < 2) throw new Error(`causalLmLoss: expected sequences of at least 2 positions (one shifted target), got ${T}`);
  return tf.tidy(() => {
    const predictions = tf.reshape(tf.slice(logits, [0, 0, 0], [b, T - 1, V]), [b * (T - 1), V]); // positions 0..T-2
    const targets = tf.reshape(tf.slice(labels, [0, 1], [b, T - 1]), [b * (T - 1)]); // labels 1..T-1
    return crossEntropy(predictions, targets, options);
  });
}
