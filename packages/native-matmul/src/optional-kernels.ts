// The optional kernel sets beside the matMul: their names, the `--native-without` list that
// leaves some out, and the enableNativeMatMul options it stands for. Pure TypeScript: usable
// where the addon is not built (a CLI checks its arguments before it loads anything).

/**
 * The optional kernel sets that {@link enableNativeMatMul} registers beside the matMul: `gelu`
 * (GELU, exact and tanh form, forward and gradient) and `layerNorm` (LayerNorm over the last axis, forward
 * and gradients). Each is switched by the option of its name ({@link NativeMatMulOptions},
 * default on) and reported under that name in {@link NativeMatMulInfo}; this list is where
 * they are named, and the one that {@link parseNativeWithout} accepts names from.
 *
 * @example
 * ```ts
 * OPTIONAL_NATIVE_KERNELS; // ['gelu', 'layerNorm']
 * const info = enableNativeMatMul();
 * const inUse = ['matMul', ...OPTIONAL_NATIVE_KERNELS.filter((k) => info[k])]; // ['matMul', 'gelu', 'layerNorm']
 * ```
 */
export const OPTIONAL_NATIVE_KERNELS = ['gelu', 'layerNorm'] as const;

/**
 * The name of one optional kernel set ({@link OPTIONAL_NATIVE_KERNELS}).
 *
 * @example
 * ```ts
 * const k: OptionalNativeKernel = 'layerNorm';
 * enableNativeMatMul({ [k]: false });
 * ```
 */
export type OptionalNativeKernel = (typeof OPTIONAL_NATIVE_KERNELS)[number];

/**
 * Parses the value of a `--native-without` flag: a comma-separated list of optional kernel
 * sets ({@link OPTIONAL_NATIVE_KERNELS}) to leave out, each named at most once. Names are
 * trimmed and empty entries (`gelu,`) skipped; an empty list, an unknown name or a name given
 * twice throws an Error that says what was expected and what came.
 *
 * @example
 * ```ts
 * parseNativeWithout('layerNorm');           // ['layerNorm']
 * parseNativeWithout(' gelu , layerNorm ');  // ['gelu', 'layerNorm']
 * parseNativeWithout('gelu,foo');
 * // Error: --native-without: expected a comma-separated list of gelu, layerNorm (each at most once); got 'gelu,foo' ('foo' is not one)
 * ```
 */
export function parseNativeWithout(value: string): OptionalNativeKernel[] {
  const names = value.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const fail = (why: string) => {
    throw new Error(`--native-without: expected a comma-separated list of ${OPTIONAL_NATIVE_KERNELS.join(', ')} (each at most once); got '${value}' (${why})`);
  };
  if (names.length === 0) fail('an empty list');
  const unknown = names.filter((n) => !(OPTIONAL_NATIVE_KERNELS as readonly string[]).includes(n));
  if (unknown.length) fail(`${unknown.map((n) => `'${n}'`).join(', ')} ${unknown.length === 1 ? 'is not one' : 'are not'}`);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length) fail(`${[...new Set(twice)].map((n) => `'${n}'`).join(', ')} named more than once`);
  return names as OptionalNativeKernel[];
}

/**
 * The {@link enableNativeMatMul} options that register every optional kernel set but those in
 * `without` (e.g. what {@link parseNativeWithout} returned).
 *
 * @example
 * ```ts
 * nativeKernelsWithout(['gelu']); // { gelu: false, layerNorm: true }
 * enableNativeMatMul({ threads: 4, ...nativeKernelsWithout(parseNativeWithout('layerNorm')) });
 * ```
 */
export function nativeKernelsWithout(without: readonly OptionalNativeKernel[]): Record<OptionalNativeKernel, boolean> {
  return Object.fromEntries(OPTIONAL_NATIVE_KERNELS.map((k) => [k, !without.includes(k)])) as Record<OptionalNativeKernel, boolean>;
}
