/** How the next token is chosen from the last position's logits. */
export interface SamplingOptions {
  /** Sample from the distribution (`true`) or take the argmax (`false`, greedy). Default: `false`. */
  doSample?: boolean;
  /** Logits are divided by it before sampling. Default: `1`. */
  temperature?: number;
  /** Keep only the `topK` most likely tokens (ties with the k-th kept). Default: `0` = off. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches `topP`. Default: `1` = off. */
  topP?: number;
}

/**
 * Index of the largest value (the first one on ties, as `torch.argmax`).
 *
 * @example
 * ```ts
 * argmax(new Float32Array([0.1, 2, 2, -1])); // 1
 * ```
 */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/**
 * Picks the next token from one row of logits `[vocab]`: greedy argmax, or Hugging Face's
 * sampling warpers in their order (temperature, top-k, top-p) then a draw from `random`.
 *
 * @example
 * ```ts
 * const rng = seededRandom(0);
 * chooseToken(new Float32Array([1, 3, 2]), { doSample: true, temperature: 0.7, topK: 2 }, rng); // 1 or 2
 * ```
 */
export function chooseToken(logits: ArrayLike<number>, options: SamplingOptions, random: () => number): number {
  if (!options.doSample) return argmax(logits);
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new Error(`topP must be in (0, 1], got ${topP}`);
  const n = logits.length;
  const scores = Float64Array.from({ length: n }, (_, i) => logits[i]! / temperature);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b); // descending
  let keep = n;
  if (topK > 0 && topK < n) {
    const kth = scores[order[topK - 1]!]!;
    keep = order.findIndex((i) => scores[i]! < kth);
    if (keep < 0) keep = n;
  }
  const max = scores[order[0]!]!;
  let total = 0;
  for (let r = 0; r < keep; r++) total += Math.exp(scores[order[r]!]! - max);
  if (topP < 1) {
    // HF: drop the tokens whose ascending cumulative probability is <= 1 - topP, keep at least one.
    let tail = 0;
    let cut = keep;
    for (let r = keep - 1; r > 0; r--) {
      tail += Math.exp(scores[order[r]!]! - max) / total;
      if (tail <= 1 - topP) cut = r;
      else break;
    }
    keep = cut;
    total = 0;
    for (let r = 0; r < keep; r++) total += Math.exp(scores[order[r]!]! - max);
  }
  let u = random() * total;
  for (let r = 0; r < keep; r++) {
    u -= Math.exp(scores[order[r]!]! - max);
    if (u < 0) return order[r]!;
  }
  return order[keep - 1]!;
}
