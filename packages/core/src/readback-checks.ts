// Input checks that read tensor values back to the CPU inside synchronous forwards, and the scope
// that turns them off for callers that checked those values themselves, asynchronously.
let disabledDepth = 0;

/**
 * Whether checks that read a tensor back synchronously may run (the token-id range of
 * {@link embeddingLookup}, the labels of {@link crossEntropy}, the `<image>` count of
 * `@vlm/gated-xattn`'s `FlamingoLM`): `true`, except inside {@link withoutReadbackChecks}.
 *
 * @example
 * ```ts
 * readbackChecksEnabled();                              // true
 * withoutReadbackChecks(() => readbackChecksEnabled()); // false
 * ```
 */
export function readbackChecksEnabled(): boolean {
  return disabledDepth === 0;
}

/**
 * Runs the synchronous `fn` with the input checks that read tensor values back to the CPU
 * turned off (see {@link readbackChecksEnabled}); everything else, the numbers included, is
 * unchanged. For callers that have checked those values already, on the host or after one
 * asynchronous read: on WebGPU a synchronous read of a GPU tensor stalls the GPU (or, in
 * headless Chromium without a GPU, loses the device), so the asynchronous APIs
 * ({@link generateGreedyAsync}, `@vlm/gated-xattn`'s `FlamingoLM.generateAsync`, `@vlm/pipelines`'
 * `Flamingo.generateAsync`) check on the host and run their forwards in this scope. A training
 * loss can run here when its data was checked once up front (e.g. with {@link checkTokenIds}).
 *
 * The scope covers `fn`'s synchronous run only: `fn` must not return a promise.
 *
 * @example
 * ```ts
 * checkTokenIds(hostIds, lm.vocabSize, 'my batch');            // once, on the host
 * const loss = withoutReadbackChecks(() => causalLmLoss(lm.forward({ inputIds }).logits, labels));
 * ```
 */
export function withoutReadbackChecks<T>(fn: () => T): T {
  disabledDepth++;
  let out: T;
  try {
    out = fn();
  } finally {
    disabledDepth--;
  }
  if (out !== null && typeof out === 'object' && typeof (out as { then?: unknown }).then === 'function') {
    throw new Error('withoutReadbackChecks: expected a synchronous function, got one that returned a promise (the scope cannot span an await)');
  }
  return out;
}

/**
 * Checks token ids on the host: every id must be an integer in `[0, vocabSize)`. Throws an
 * Error naming the range found otherwise. This is the check {@link embeddingLookup} makes
 * (after a read-back) when {@link readbackChecksEnabled}; callers that run forwards in
 * {@link withoutReadbackChecks} make it on the ids they hold.
 *
 * @param ids the ids, flat or as rows
 * @param vocabSize the number of rows of the embedding table
 * @param what names the ids in the message
 *
 * @example
 * ```ts
 * checkTokenIds([[5, 9], [1, 0]], 10, 'prompt ids'); // fine
 * checkTokenIds([[5, 12]], 10, 'prompt ids');    // throws: prompt ids must be in [0, 10), got values in [5, 12]
 * ```
 */
export function checkTokenIds(ids: ArrayLike<number> | readonly ArrayLike<number>[], vocabSize: number, what = 'Embedding ids'): void {
  let lo = Infinity;
  let hi = -Infinity;
  let fractional: number | undefined;
  const scan = (row: ArrayLike<number>) => {
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (fractional === undefined && !Number.isInteger(v)) fractional = v;
    }
  };
  if (ids.length > 0 && typeof ids[0] === 'object') for (const row of ids as readonly ArrayLike<number>[]) scan(row);
  else scan(ids as ArrayLike<number>);
  if (fractional !== undefined) throw new Error(`${what} must be integers, got ${fractional}`);
  if (lo === Infinity) return;
  if (lo < 0 || hi >= vocabSize || Number.isNaN(lo) || Number.isNaN(hi)) {
    throw new Error(`${what} must be in [0, ${vocabSize}), got values in [${lo}, ${hi}]`);
  }
}
