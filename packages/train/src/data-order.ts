import { seededRandom } from '@vlm/core';

/**
 * The seeded order in which a data set is visited: every epoch a new permutation of
 * `0 … size−1` (Fisher–Yates driven by `seededRandom` of @vlm/core, seeded by the seed and the
 * epoch), so any epoch's order is recomputed exactly from `(seed, epoch)` alone — which is the
 * whole random state a checkpoint needs to resume in the same place.
 *
 * @example
 * ```ts
 * const order = new DataOrder({ size: 10, seed: 0 });
 * order.epoch(3); // a permutation of 0…9, the same on every run
 * ```
 */
export class DataOrder {
  /** Number of examples. */
  readonly size: number;
  /** The seed. */
  readonly seed: number;
  /** Whether epochs are shuffled (otherwise every epoch is `0 … size−1`). */
  readonly shuffle: boolean;

  /**
   * @param options `size` (examples), `seed` (default 0) and `shuffle` (default true).
   */
  constructor(options: { size: number; seed?: number; shuffle?: boolean }) {
    if (!(Number.isSafeInteger(options.size) && options.size > 0)) throw new Error(`DataOrder: size must be an integer > 0, got ${options.size}`);
    this.size = options.size;
    this.seed = options.seed ?? 0;
    if (!Number.isSafeInteger(this.seed)) throw new Error(`DataOrder: seed must be an integer, got ${options.seed}`);
    this.shuffle = options.shuffle ?? true;
  }

  /** The order of epoch `epoch` (0-based). */
  epoch(epoch: number): number[] {
    if (!(Number.isSafeInteger(epoch) && epoch >= 0)) throw new Error(`DataOrder.epoch: expected an integer >= 0, got ${epoch}`);
    const order = Array.from({ length: this.size }, (_, i) => i);
    if (!this.shuffle) return order;
    // One generator per epoch: seed and epoch mixed into 32 bits (a multiplicative hash).
    const rng = seededRandom((Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35)) >>> 0);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  }
}
