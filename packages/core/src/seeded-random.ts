/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence of
 * floats in `[0, 1)` on every platform and backend. Used for reproducible sampling: BLIP-2's ITM
 * hard negatives, sampled generation, drawn data.
 *
 * @example
 * ```ts
 * const rng = seededRandom(42);
 * rng(); // 0.6011037519201636, always
 * ```
 */
export function seededRandom(seed: number): () => number {
  if (!Number.isFinite(seed)) throw new Error(`seededRandom: expected a finite seed, got ${seed}`);
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
