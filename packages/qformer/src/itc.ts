import * as tf from '@tensorflow/tfjs-core';
import { assertShape, crossEntropy } from '@vlm/core';

/**
 * `torch.nn.functional.normalize(x, dim=-1)`: `x / max(‖x‖₂, eps)` over the last dimension.
 *
 * @example
 * ```ts
 * l2Normalize(tf.tensor2d([[3, 4]])).arraySync(); // [[0.6, 0.8]]
 * ```
 */
export function l2Normalize(x: tf.Tensor, eps = 1e-12): tf.Tensor {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.sqrt(tf.sum(tf.square(x), -1, true)), eps)));
}

/**
 * BLIP-2's image-text similarity: for every image `i` and text `j`, the largest dot product
 * between one of the image's query features and the text feature,
 * `sim[i, j] = max_q ⟨imageFeats[i, q], textFeat[j]⟩` (features already normalised).
 *
 * @param imageFeats `[bi, Q, D]`
 * @param textFeat `[bt, D]`
 * @returns `[bi, bt]`
 *
 * @example
 * ```ts
 * itcSimilarity(tf.ones([2, 8, 256]), tf.ones([3, 256])).shape; // [2, 3]
 * ```
 */
export function itcSimilarity(imageFeats: tf.Tensor, textFeat: tf.Tensor): tf.Tensor2D {
  assertShape(imageFeats, [null, null, null], 'ITC imageFeats', ['batch', 'queries', 'embedDim']);
  const [bi, q, d] = imageFeats.shape as [number, number, number];
  assertShape(textFeat, [null, d], 'ITC textFeat', ['batch', 'embedDim']);
  const bt = textFeat.shape[0]!;
  return tf.tidy(() => {
    const s = tf.matMul(tf.reshape(imageFeats, [bi * q, d]), tf.transpose(textFeat)); // [bi·Q, bt]
    return tf.max(tf.reshape(s, [bi, q, bt]), 1) as tf.Tensor2D; // [bi, bt]
  });
}

/** Options of {@link itcLoss}. */
export interface ItcLossOptions {
  /** Label smoothing of both cross-entropies (LAVIS uses `0.1`). Default: `0`. */
  labelSmoothing?: number;
}

/** Result of {@link itcLoss}; new tensors owned by the caller. */
export interface ItcLossResult {
  /** `(CE(sim_i2t, diag) + CE(sim_t2i, diag)) / 2`, a scalar. */
  loss: tf.Scalar;
  /** `sim_i2t / temperature` `[b, b]` (image rows, text columns); `sim_t2i` is its transpose. */
  logits: tf.Tensor2D;
}

/**
 * BLIP-2 image-text contrastive loss (LAVIS `blip2_qformer.py`, one device): L2-normalise the
 * projected query features and the projected text `[CLS]` feature, take
 * {@link itcSimilarity} divided by the temperature, and average the in-batch cross-entropies of
 * both directions with the matching pair (the diagonal) as the target.
 *
 * @param imageFeats `vision_proj(query_output)` `[b, Q, D]` (not yet normalised)
 * @param textFeat `text_proj(text_output[:, 0])` `[b, D]` (not yet normalised)
 * @param temperature a scalar tensor (the learnable `temp`) or a number
 *
 * @example
 * ```ts
 * const { loss, logits } = itcLoss(tf.randomNormal([4, 8, 256]), tf.randomNormal([4, 256]), 0.07, { labelSmoothing: 0.1 });
 * loss.shape;   // []
 * logits.shape; // [4, 4]
 * ```
 */
export function itcLoss(imageFeats: tf.Tensor, textFeat: tf.Tensor, temperature: tf.Tensor | number, options: ItcLossOptions = {}): ItcLossResult {
  const b = imageFeats.shape[0]!;
  if (textFeat.shape[0] !== b) throw new Error(`itcLoss: expected as many texts as images (${b}), got ${textFeat.shape[0]}`);
  const targets = Array.from({ length: b }, (_, i) => i);
  return tf.tidy(() => {
    const logits = tf.div(itcSimilarity(l2Normalize(imageFeats), l2Normalize(textFeat)), temperature) as tf.Tensor2D; // [b, b]
    const i2t = crossEntropy(logits, targets, options);
    const t2i = crossEntropy(tf.transpose(logits), targets, options);
    return { loss: tf.div(tf.add(i2t, t2i), 2) as tf.Scalar, logits };
  });
}
