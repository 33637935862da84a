import * as tf from '@tensorflow/tfjs-core';
import type { DecoderLayerContext } from '@vlm/core';

/** `cos` and `sin` of the rotary angles, each `[batch, tokens, headDim]`. */
export interface RotaryCosSin {
  /** Cosines of the rotary angles `[batch, tokens, headDim]` (float32). */
  cos: tf.Tensor;
  /** Sines of the rotary angles `[batch, tokens, headDim]` (float32). */
  sin: tf.Tensor;
}

/** A decoder layer context that also carries precomputed rotary tables (built once per pass). */
export interface RotaryLayerContext extends DecoderLayerContext {
  /** Rotary tables for this pass's `positionIds` (set by `LlamaForCausalLM`); when absent, each attention layer computes them. */
  rotary?: RotaryCosSin;
}

/**
 * LLaMA rotary tables for integer `positionIds` `[batch, tokens]`, as Hugging Face's default
 * RoPE: `invFreq_j = 1 / θ^(2j/headDim)` for `j < headDim/2`, `angle = position · invFreq`,
 * both in float32, and `cos`/`sin` over the concatenated halves `[f, f]` (not interleaved).
 *
 * @example
 * ```ts
 * const { cos, sin } = rotaryCosSin(tf.tensor2d([[0, 1, 2]], undefined, 'int32'), 12, 10000);
 * cos.shape; // [1, 3, 12]
 * ```
 */
export function rotaryCosSin(positionIds: tf.Tensor, headDim: number, theta: number): RotaryCosSin {
  if (positionIds.rank !== 2) throw new Error(`rotaryCosSin: positionIds must be [batch, tokens], got [${positionIds.shape}]`);
  if (headDim % 2 !== 0) throw new Error(`rotaryCosSin: headDim must be even, got ${headDim}`);
  const f = Math.fround;
  const invFreq = Float32Array.from({ length: headDim / 2 }, (_, j) => f(1 / f(theta ** f((2 * j) / headDim))));
  return tf.tidy(() => {
    const angle = tf.mul(tf.expandDims(tf.cast(positionIds, 'float32'), -1), tf.tensor1d(invFreq)); // [b, t, hd/2]
    const full = tf.concat([angle, angle], -1);
    return { cos: tf.cos(full), sin: tf.sin(full) };
  });
}

/**
 * Rotates each head of `x` `[batch, tokens, heads·headDim]` by the rotary tables:
 * `x·cos + rotateHalf(x)·sin` with `rotateHalf([x₁, x₂]) = [−x₂, x₁]` (Hugging Face layout).
 *
 * @example
 * ```ts
 * const q = tf.randomNormal([2, 7, 4 * 12]);
 * applyRotary(q, rotaryCosSin(positions, 12, 1e4), 4).shape; // [2, 7, 48]
 * ```
 */
export function applyRotary(x: tf.Tensor, { cos, sin }: RotaryCosSin, heads: number): tf.Tensor {
  const [b, t, width] = x.shape as [number, number, number];
  const headDim = width / heads;
  return tf.tidy(() => {
    const xh = tf.reshape(x, [b, t, heads, headDim]);
    const [x1, x2] = tf.split(xh, 2, -1) as [tf.Tensor, tf.Tensor];
    const rotated = tf.concat([tf.neg(x2), x1], -1);
    const c = tf.reshape(cos, [cos.shape[0]!, t, 1, headDim]);
    const s = tf.reshape(sin, [sin.shape[0]!, t, 1, headDim]);
    return tf.reshape(tf.add(tf.mul(xh, c), tf.mul(rotated, s)), [b, t, width]);
  });
}
