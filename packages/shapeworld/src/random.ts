/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence of
 * floats in `[0, 1)` on every platform, in Node and in the browser. Every random choice of the
 * world goes through one of these, so a scene is a pure function of its seed.
 *
 * (The same algorithm as `@vlm/core`'s `seededRandom`, repeated here so that the world needs no
 * TensorFlow.js.)
 *
 * @example
 * ```ts
 * const rng = worldRandom(42);
 * rng(); // 0.6011037519201636, always
 * ```
 */
export function worldRandom(seed: number): () => number {
  if (!Number.isFinite(seed)) throw new Error(`worldRandom: expected a finite seed, got ${seed}`);
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Mixes integers into one 32-bit seed (a murmur3-style finaliser over each part), so that
 * different streams — a split, an index, a purpose — get unrelated seeds.
 *
 * @example
 * ```ts
 * mixSeed(0, 1) !== mixSeed(1, 0); // true
 * ```
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    if (!Number.isFinite(p)) throw new Error(`mixSeed: expected finite numbers, got ${p}`);
    let k = Math.trunc(p) >>> 0;
    k = Math.imul(k ^ (k >>> 16), 0x85ebca6b);
    k = Math.imul(k ^ (k >>> 13), 0xc2b2ae35);
    k ^= k >>> 16;
    h = Math.imul(h ^ k, 0x01000193) >>> 0;
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** A uniform integer in `[lo, hi]` (both inclusive). */
export function randomInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** One element of `items`, uniformly. */
export function randomChoice<T>(rng: () => number, items: readonly T[]): T {
  if (items.length === 0) throw new Error('randomChoice: expected a non-empty list, got an empty one');
  return items[Math.floor(rng() * items.length)]!;
}

/** A shuffled copy of `items` (Fisher–Yates). */
export function shuffled<T>(rng: () => number, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
