/** A PyTorch constructor-kwargs object as JSON (snake_case names), e.g. a golden case's `config`. */
export type PyTorchKwargs = Record<string, unknown>;

/**
 * Renames PyTorch constructor kwargs to the camelCase `…Args` of a `@vlm` module. `null` and
 * `undefined` values are dropped (the module's default applies); a key `names` does not list
 * throws an `Error` naming it and the accepted keys.
 *
 * @param what how the error names the caller, e.g. `'perceiverResamplerArgsFromConfig'`.
 * @param names PyTorch name → argument name.
 *
 * @example
 * ```ts
 * argsFromPyTorchKwargs<{ dim: number; numHeads: number }>('myArgs', { dim: 32, n_heads: 4 }, { dim: 'dim', n_heads: 'numHeads' });
 * // { dim: 32, numHeads: 4 }
 * ```
 */
export function argsFromPyTorchKwargs<T>(what: string, kwargs: PyTorchKwargs, names: Record<string, keyof T>): T {
  const out: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(kwargs)) {
    const name = names[key];
    if (name === undefined) unknown.push(key);
    else if (value !== null && value !== undefined) out[name as string] = value;
  }
  if (unknown.length) {
    throw new Error(`${what}: unknown argument(s) ${unknown.join(', ')}; expected some of ${Object.keys(names).join(', ')}`);
  }
  return out as T;
}
