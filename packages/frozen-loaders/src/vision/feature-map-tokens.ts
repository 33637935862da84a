import * as tf from '@tensorflow/tfjs-core';

/**
 * A CNN feature map as tokens: `[b, h, w, c]` → `[b, h'·w', c]`, row-major over the grid, after
 * an optional `pool×pool` average pooling (stride `pool`, `'valid'`, so `h' = floor(h / pool)`).
 * Token-shaped inputs pass through: `[b, t, c]` unchanged, `[b, c]` → `[b, 1, c]`.
 *
 * @example
 * ```ts
 * featureMapToTokens(tf.zeros([2, 14, 14, 576]), 2).shape; // [2, 49, 576]
 * featureMapToTokens(tf.zeros([2, 14, 14, 576])).shape;    // [2, 196, 576]
 * ```
 */
export function featureMapToTokens(x: tf.Tensor, pool = 1): tf.Tensor3D {
  if (!Number.isInteger(pool) || pool < 1) throw new Error(`featureMapToTokens: pool must be a positive integer, got ${pool}`);
  return tf.tidy(() => {
    if (x.rank === 2) return tf.expandDims(x, 1) as tf.Tensor3D;
    if (x.rank === 3) return tf.clone(x) as tf.Tensor3D;
    if (x.rank !== 4) throw new Error(`featureMapToTokens: expected [b, h, w, c], [b, tokens, c] or [b, c], got [${x.shape}]`);
    let y = x as tf.Tensor4D;
    if (pool > 1) {
      if (y.shape[1] < pool || y.shape[2] < pool) throw new Error(`featureMapToTokens: a ${y.shape[1]}×${y.shape[2]} map cannot be pooled ${pool}×${pool}`);
      y = tf.avgPool(y, pool, pool, 'valid');
    }
    const [b, h, w, c] = y.shape;
    return tf.reshape(y, [b, h * w, c]) as tf.Tensor3D;
  });
}

/**
 * Tokens a `[h, w]` map gives after {@link featureMapToTokens} with `pool`.
 *
 * @example
 * ```ts
 * pooledTokenCount(14, 14, 2); // 49
 * ```
 */
export function pooledTokenCount(h: number, w: number, pool = 1): number {
  return Math.floor(h / pool) * Math.floor(w / pool);
}
