/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives the same sequence
 * on every platform and backend, so sampled generations are reproducible.
 *
 * @example
 * ```ts
 * const rng = seededRandom(42);
 * rng(); // a number in [0, 1), the same for every run with seed 42
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
