import * as tf from '@tensorflow/tfjs-core';
import { MASK_VALUE } from './masks';
import { matMul2d } from './matmul';
import { onSlowMatMulWasm } from './wasm-kernels';

/** Options of {@link scaledDotProductAttention}. */
export interface AttentionOptions {
  /** Number of heads; the last dimension of q, k and v is split into `heads` equal parts. */
  heads: number;
  /** Logit scale. Default: `1 / sqrt(headDim)`. */
  scale?: number;
  /**
   * Boolean mask broadcastable to `[batch, heads, queries, keys]`: true where the query may
   * attend to the key. Disallowed logits are set to {@link MASK_VALUE} (as `masked_fill`), so
   * a fully masked row averages all keys instead of producing NaN.
   */
  allowed?: tf.Tensor;
  /** Float mask broadcastable to `[batch, heads, queries, keys]`, added to the logits. */
  additiveMask?: tf.Tensor;
  /**
   * Compute the products head by head with 2-D matMuls instead of one batched matMul. Same
   * results up to float summation order (about 1e-7 relative). Default: `true` on the wasm
   * backend (where it is ~10× faster), `false` elsewhere (webgl, webgpu and cpu batch well).
   */
  perHead?: boolean;
}

/**
 * Multi-head scaled dot-product attention on already projected tensors:
 * `softmax(q·kᵀ·scale + mask)·v` per head, heads concatenated back.
 *
 * The softmax is TF.js's, whose kernels subtract the row max on every backend, so large
 * logits never overflow.
 *
 * @param q `[batch, queries, heads·dq]`
 * @param k `[batch, keys, heads·dq]`
 * @param v `[batch, keys, heads·dv]`
 * @returns `[batch, queries, heads·dv]`
 *
 * @example
 * ```ts
 * const out = scaledDotProductAttention(tf.randomNormal([2, 4, 32]), tf.randomNormal([2, 9, 32]), tf.randomNormal([2, 9, 32]), { heads: 4 });
 * out.shape; // [2, 4, 32]
 * ```
 */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions): tf.Tensor {
  const { heads } = options;
  const [b, , dq] = q.shape as [number, number, number];
  const s = k.shape[1]!;
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3 || k.shape[0] !== b || v.shape[0] !== b || v.shape[1] !== s || k.shape[2] !== dq) {
    throw new Error(
      `scaledDotProductAttention: expected q [batch, queries, d], k [batch, keys, d], v [batch, keys, dv], ` +
        `got q [${q.shape}], k [${k.shape}], v [${v.shape}]`,
    );
  }
  if (dq % heads !== 0 || v.shape[2]! % heads !== 0) {
    throw new Error(`scaledDotProductAttention: widths ${dq} and ${v.shape[2]} must be divisible by heads=${heads}`);
  }
  const scale = options.scale ?? 1 / Math.sqrt(dq / heads);
  const perHead = options.perHead ?? onSlowMatMulWasm();
  return tf.tidy(() => {
    const qh = tf.mul(splitHeads(q, heads), scale); // [b, h, n, d]
    const masked = (logits: tf.Tensor) => {
      if (options.additiveMask) logits = tf.add(logits, options.additiveMask);
      if (options.allowed) {
        // masked_fill as `logits·keep + (1 − keep)·MASK_VALUE`, both factors at the mask's own
        // (broadcast) shape: the same values for finite logits (x·1 + 0 = x, x·0 + MASK_VALUE =
        // MASK_VALUE) and the same gradient (dy·keep), without broadcasting the mask and the
        // scalar to the logits' shape for a Select (~10 ms a step on xattn_flamingo, wasm).
        const keep = tf.cast(checkBoolMask(options.allowed, logits.shape), 'float32');
        logits = tf.add(tf.mul(logits, keep), tf.mul(tf.sub(1, keep), MASK_VALUE));
      }
      return tf.softmax(logits, -1);
    };
    if (!perHead || b * heads === 0) {
      const probs = masked(tf.matMul(qh, splitHeads(k, heads), false, true)); // [b, h, n, s]
      return mergeHeads(tf.matMul(probs, splitHeads(v, heads))); // [b, n, h·dv]
    }
    // wasm: batched (rank-3+) and transposed matMuls run a naive loop at ~3.5 GFLOP/s, 2-D
    // ones go to XNNPACK (~36 GFLOP/s even at these sizes), so loop over the b·h heads. Masks
    // and softmax stay batched: one kernel call each, identical elementwise results.
    const n = q.shape[1]!;
    const dh = dq / heads;
    const dv = v.shape[2]! / heads;
    const flat = (x: tf.Tensor, r: number, c: number) => tf.unstack(tf.reshape(x, [b * heads, r, c]));
    const qs = flat(qh, n, dh);
    const kTs = flat(tf.transpose(tf.reshape(k, [b, s, heads, dh]), [0, 2, 3, 1]), dh, s); // kᵀ per head [d, s]
    const vs = flat(splitHeads(v, heads), s, dv);
    const logits = tf.reshape(tf.stack(qs.map((qi, i) => matMul2d(qi, kTs[i]!))), [b, heads, n, s]);
    const probs = flat(masked(logits), n, s);
    const out = tf.reshape(tf.stack(probs.map((p, i) => matMul2d(p, vs[i]!))), [b, heads, n, dv]);
    return mergeHeads(out); // [b, n, h·dv]
  });
}

/** `[b, n, h·d] → [b, h, n, d]`. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [b, n, hd] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [b, n, heads, hd / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** `[b, h, n, d] → [b, n, h·d]`. */
export function mergeHeads(x: tf.Tensor): tf.Tensor3D {
  const [b, h, n, d] = x.shape as [number, number, number, number];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, n, h * d]) as tf.Tensor3D;
}

/** `mask` itself, after checking that it is bool and broadcasts to `shape`. */
function checkBoolMask(mask: tf.Tensor, shape: number[]): tf.Tensor {
  if (mask.dtype !== 'bool') throw new Error(`attention mask 'allowed' must be bool, got ${mask.dtype}`);
  const lead = shape.length - mask.rank;
  const ok = lead >= 0 && mask.shape.every((d, i) => d === 1 || d === shape[lead + i]);
  if (!ok) throw new Error(`attention mask of shape [${mask.shape}] does not broadcast to logits [${shape}] (batch, heads, queries, keys)`);
  return mask;
}
