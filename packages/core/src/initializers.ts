import * as tf from '@tensorflow/tfjs-core';
import { seededRandom } from './seeded-random';

let nextSeed: (() => number) | null = null;

/**
 * Seeds every later initialisation of `@vlm` modules (`uniformFanIn`, `xavierUniform`,
 * `normal`), as `torch.manual_seed` does: modules built in the same order after the same seed
 * get the same weights. `null` goes back to unseeded (TF.js's own random seeds).
 *
 * @example
 * ```ts
 * manualSeed(0);
 * const a = new Linear({ inFeatures: 4, outFeatures: 2 });
 * manualSeed(0);
 * const b = new Linear({ inFeatures: 4, outFeatures: 2 }); // same weights as a
 * ```
 */
export function manualSeed(seed: number | null): void {
  if (seed === null) nextSeed = null;
  else {
    const rng = seededRandom(seed);
    nextSeed = () => Math.floor(rng() * 2 ** 31);
  }
}

/**
 * PyTorch's default initialisation of `nn.Linear` weights and biases (and of the projections
 * of `nn.MultiheadAttention`'s `out_proj`): `U(-1/sqrt(fanIn), 1/sqrt(fanIn))`.
 *
 * @example
 * ```ts
 * const w = uniformFanIn([16, 8], 8); // [out, in] like torch.nn.Linear(8, 16).weight
 * ```
 */
export function uniformFanIn(shape: number[], fanIn: number): tf.Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return tf.randomUniform(shape, -bound, bound, 'float32', nextSeed?.());
}

/**
 * Xavier/Glorot uniform, as `torch.nn.init.xavier_uniform_` (used by `nn.MultiheadAttention`
 * for `in_proj_weight`): `U(-a, a)` with `a = sqrt(6 / (fanIn + fanOut))`.
 */
export function xavierUniform(shape: [number, number]): tf.Tensor {
  const [fanOut, fanIn] = shape;
  const bound = Math.sqrt(6 / (fanIn + fanOut));
  return tf.randomUniform(shape, -bound, bound, 'float32', nextSeed?.());
}

/** `N(0, std²)`, as `torch.randn(shape) * std` (embeddings, learned queries, latents). */
export function normal(shape: number[], std = 1): tf.Tensor {
  return tf.randomNormal(shape, 0, std, 'float32', nextSeed?.());
}
