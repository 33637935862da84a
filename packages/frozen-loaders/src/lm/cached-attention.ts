import * as tf from '@tensorflow/tfjs-core';
import { appendKV, scaledDotProductAttention, type LayerKV } from '@vlm/core';

/** Options of {@link cachedSelfAttention}. */
export interface CachedSelfAttentionOptions {
  /** Query heads. */
  heads: number;
  /** Key/value heads (grouped-query attention when fewer than `heads`). Default: `heads`. */
  kvHeads?: number;
  /** Logit scale. Default: `1 / sqrt(headDim)`. */
  scale?: number;
  /** Bool `[batch, 1, queries, past + queries]`: true where the query may see the key. */
  allowed: tf.Tensor;
  /** This layer's cache entry: keys and values of earlier tokens, `[b, past, kvHeads·hd]`. */
  past?: LayerKV;
}

/**
 * Self-attention of projected `q` `[b, t, heads·hd]` over the cached plus new keys and values
 * (`k`, `v` `[b, t, kvHeads·hd]`), using core's `scaledDotProductAttention`. With grouped-query
 * attention, query head `h` uses kv head `⌊h / (heads/kvHeads)⌋`. Returns the merged head
 * outputs `[b, t, heads·hd]` and the layer's next cache entry (layout `[b, positions,
 * kvHeads·hd]`: heads merged, LLaMA keys already rotated).
 *
 * @example
 * ```ts
 * const { output, present } = cachedSelfAttention(q, k, v, { heads: 4, kvHeads: 2, allowed });
 * output.shape; // [2, 7, 48]; present.key.shape: [2, 7, 24]
 * ```
 */
export function cachedSelfAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: CachedSelfAttentionOptions,
): {
  /** Merged head outputs `[batch, tokens, heads·hd]`, before the output projection. */
  output: tf.Tensor;
  /** The layer's next cache entry: `past` plus these keys and values, each `[batch, past + tokens, kvHeads·hd]`. */
  present: LayerKV;
} {
  const heads = options.heads;
  const kvHeads = options.kvHeads ?? heads;
  if (heads % kvHeads !== 0) throw new Error(`cachedSelfAttention: heads (${heads}) must be a multiple of kvHeads (${kvHeads})`);
  return tf.tidy(() => {
    const present = appendKV(options.past, k, v, 1);
    const rep = heads / kvHeads;
    const output = scaledDotProductAttention(q, repeatKV(present.key, kvHeads, rep), repeatKV(present.value, kvHeads, rep), {
      heads,
      scale: options.scale,
      allowed: options.allowed,
    });
    return { output, present } as unknown as tf.TensorContainer;
  }) as unknown as { output: tf.Tensor; present: LayerKV };
}

/**
 * `[b, s, kvHeads·hd] → [b, s, kvHeads·rep·hd]`, each kv head repeated `rep` times in place.
 * Tiles a rank-3 view: TF.js has no Tile gradient above rank 4.
 */
function repeatKV(x: tf.Tensor, kvHeads: number, rep: number): tf.Tensor {
  if (rep === 1) return x;
  const [b, s, width] = x.shape as [number, number, number];
  const hd = width / kvHeads;
  return tf.reshape(tf.tile(tf.reshape(x, [b * s * kvHeads, 1, hd]), [1, rep, 1]), [b, s, width * rep]);
}
