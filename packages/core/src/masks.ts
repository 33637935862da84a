import * as tf from '@tensorflow/tfjs-core';

/**
 * The logit given to a masked (query, key) pair: large, negative and finite. `-Infinity`
 * turns a fully masked row into NaN and WebGL may run in float16 (largest finite 65504), so
 * every `@vlm` mask uses this value, as BERT, LAVIS and Hugging Face's BLIP-2 do.
 */
export const MASK_VALUE = -10000;

/**
 * Causal mask: `allowed[i, j]` is true when query `i` may see key `j`, i.e. `j <= i + past`.
 * With a KV cache the `queries` new positions come after `keys - queries` cached ones.
 *
 * @param queries number of query positions.
 * @param keys number of key positions. Default: `queries`.
 * @returns bool `[queries, keys]`.
 *
 * @example
 * ```ts
 * causalMask(3).arraySync(); // [[true,false,false],[true,true,false],[true,true,true]]
 * ```
 */
export function causalMask(queries: number, keys = queries): tf.Tensor2D {
  if (keys < queries) throw new Error(`causalMask: keys (${keys}) must be >= queries (${queries})`);
  const past = keys - queries;
  return tf.tidy(() => {
    const i = tf.reshape(tf.range(0, queries, 1, 'int32'), [queries, 1]);
    const j = tf.reshape(tf.range(0, keys, 1, 'int32'), [1, keys]);
    return tf.lessEqual(j, tf.add(i, past)) as tf.Tensor2D;
  });
}

/**
 * Key padding mask from a Hugging Face style `attentionMask` (`1` = real token, `0` = padding):
 * bool `[batch, 1, 1, keys]`, true where the key may be attended. It broadcasts against
 * attention logits `[batch, heads, queries, keys]`; padding masks keys only, never queries.
 *
 * @example
 * ```ts
 * paddingMask(tf.tensor2d([[1, 1, 0]], undefined, 'int32')).shape; // [1, 1, 1, 3]
 * ```
 */
export function paddingMask(attentionMask: tf.Tensor): tf.Tensor4D {
  if (attentionMask.rank !== 2) {
    throw new Error(`paddingMask: expected attentionMask of shape [batch, keys], got [${attentionMask.shape.join(', ')}]`);
  }
  const [b, s] = attentionMask.shape as [number, number];
  return tf.tidy(() => tf.reshape(tf.notEqual(attentionMask, 0), [b, 1, 1, s]) as tf.Tensor4D);
}

/**
 * Block-diagonal mask: positions attend only within their own block (for example BLIP-2's ITC
 * pass, where queries and text must not see each other).
 *
 * @param sizes the length of each consecutive block.
 * @returns bool `[n, n]` with `n = sum(sizes)`.
 *
 * @example
 * ```ts
 * blockMask([2, 1]).arraySync(); // [[true,true,false],[true,true,false],[false,false,true]]
 * ```
 */
export function blockMask(sizes: readonly number[]): tf.Tensor2D {
  const ids = sizes.flatMap((n, block) => Array<number>(n).fill(block));
  return tf.tidy(() => {
    const t = tf.tensor1d(ids, 'int32');
    return tf.equal(tf.reshape(t, [-1, 1]), tf.reshape(t, [1, -1])) as tf.Tensor2D;
  });
}

/**
 * Turns a boolean "allowed" mask into an additive one: `0` where allowed, `value` elsewhere.
 * Default `value`: {@link MASK_VALUE}.
 */
export function additiveMask(allowed: tf.Tensor, value = MASK_VALUE): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.sub(1, tf.cast(allowed, 'float32')), value));
}
