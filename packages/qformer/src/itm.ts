import * as tf from '@tensorflow/tfjs-core';
import { seededRandom } from '@vlm/core';

/** Result of {@link sampleHardNegatives}: batch indices, never the positive pair. */
export interface HardNegatives {
  /** For image `i`, the index of its negative text (`!== i`). */
  negativeTextForImage: number[];
  /** For text `j`, the index of its negative image (`!== j`). */
  negativeImageForText: number[];
}

/**
 * BLIP-2's ITM hard-negative mining (LAVIS `blip2_qformer.py`): for each image one negative text
 * drawn with probability `softmax_j(sim_i2t[i, j])` over `j ≠ i`, and for each text one
 * negative image drawn with `softmax_i(sim_t2i[j, i])` over `i ≠ j` (`sim_t2i` is the
 * transpose). The positive pair is excluded exactly (LAVIS fills it with -10000), so it is never
 * returned. Sampling uses `seededRandom` from `@vlm/core`: the same similarities and seed always give the
 * same indices. Needs a batch of at least 2.
 *
 * @param simI2T the ITC logits `[b, b]` (`sim_i2t / temp`, image rows, text columns), a tensor or numbers
 * @param seed a seed, or a generator returning floats in `[0, 1)`
 *
 * @example
 * ```ts
 * const { negativeTextForImage, negativeImageForText } = sampleHardNegatives([[9, 1, 3], [2, 9, 1], [0, 4, 9]], 7);
 * // [1, 0, 1] and [1, 2, 0]: never i at index i
 * ```
 */
export function sampleHardNegatives(simI2T: tf.Tensor | number[][], seed: number | (() => number)): HardNegatives {
  const sim = Array.isArray(simI2T) ? simI2T : ((simI2T as tf.Tensor).arraySync() as number[][]);
  const b = sim.length;
  if (!Array.isArray(sim[0]) || sim.some((row) => row.length !== b)) {
    throw new Error(`sampleHardNegatives: expected a square similarity matrix [b, b], got [${b}, ${sim.map((r) => r?.length).join('|')}]`);
  }
  if (b < 2) throw new Error(`sampleHardNegatives: ITM hard negatives need a batch of at least 2, got ${b}`);
  const rng = typeof seed === 'function' ? seed : seededRandom(seed);
  const draw = (scores: number[], positive: number): number => {
    let max = -Infinity;
    scores.forEach((s, k) => {
      if (k !== positive && s > max) max = s;
    });
    const w = scores.map((s, k) => (k === positive ? 0 : Math.exp(s - max)));
    const total = w.reduce((a, x) => a + x, 0);
    let u = rng() * total;
    let last = positive === 0 ? 1 : 0;
    for (let k = 0; k < w.length; k++) {
      if (k === positive || w[k] === 0) continue;
      last = k;
      u -= w[k]!;
      if (u < 0) return k;
    }
    return last; // rounding: the last candidate
  };
  const negativeTextForImage = sim.map((row, i) => draw(row, i));
  const negativeImageForText = sim.map((_, j) => draw(sim.map((row) => row[j]!), j));
  return { negativeTextForImage, negativeImageForText };
}
