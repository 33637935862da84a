import * as tf from '@tensorflow/tfjs-core';
import { formatShape } from '@vlm/core';

/** What {@link padVisionTokens} returns. */
export interface PaddedVisionTokens {
  /** `[batch, maxTokens, dim]`, each image's tokens first, zeros after. */
  features: tf.Tensor3D;
  /** bool `[batch, maxTokens]`, **true marks padding** (PyTorch's `key_padding_mask`). */
  keyPaddingMask: tf.Tensor2D;
  /** The token count of each image. */
  lengths: number[];
}

/**
 * Stacks images with different token counts into one right-padded batch and its key padding
 * mask, ready for {@link PerceiverResampler.forward}. The inputs are not disposed.
 *
 * @param images one `[tokens_i, dim]` tensor per image (all the same `dim`).
 *
 * @example
 * ```ts
 * const { features, keyPaddingMask, lengths } = padVisionTokens([tf.zeros([17, 32]), tf.zeros([5, 32])]);
 * features.shape;       // [2, 17, 32]
 * keyPaddingMask.shape; // [2, 17]  (row 1: 5 × false, then 12 × true)
 * lengths;              // [17, 5]
 * ```
 */
export function padVisionTokens(images: readonly tf.Tensor[]): PaddedVisionTokens {
  if (images.length === 0) throw new Error('padVisionTokens: expected at least one image, got none');
  const dim = images[0]!.shape[1];
  images.forEach((t, i) => {
    if (t.rank !== 2 || t.shape[1] !== dim) {
      throw new Error(`padVisionTokens: image ${i}: expected shape [tokens, dim=${dim}], got ${formatShape(t.shape)}`);
    }
  });
  const lengths = images.map((t) => t.shape[0]!);
  const max = Math.max(...lengths);
  return tf.tidy(() => {
    const features = tf.stack(images.map((t) => tf.pad(t, [[0, max - t.shape[0]!], [0, 0]]))) as tf.Tensor3D;
    const positions = tf.reshape(tf.range(0, max, 1, 'int32'), [1, max]);
    const keyPaddingMask = tf.greaterEqual(positions, tf.reshape(tf.tensor1d(lengths, 'int32'), [-1, 1])) as tf.Tensor2D;
    return { features, keyPaddingMask, lengths };
  });
}
