import * as tf from '@tensorflow/tfjs-core';

/** Formats a shape the way errors print it: `[2, 17, 32]` (`null` for any size). */
export function formatShape(shape: ReadonlyArray<number | null>): string {
  return `[${shape.map((d) => (d === null ? 'any' : String(d))).join(', ')}]`;
}

/**
 * Throws an `Error` naming the expected and actual shapes unless `t` has `expected.length`
 * dimensions and matches every non-null entry of `expected`.
 *
 * @param what how the error names the tensor, e.g. `'PerceiverResampler input'`.
 * @param expected one entry per dimension; `null` accepts any size.
 * @param names optional dimension names for the message, e.g. `['batch', 'tokens', 'dim']`.
 *
 * @example
 * ```ts
 * assertShape(x, [null, null, 32], 'PerceiverResampler input', ['batch', 'tokens', 'dim']);
 * // Error: PerceiverResampler input: expected shape [batch, tokens, dim=32], got [2, 17, 24]
 * ```
 */
export function assertShape(
  t: tf.Tensor,
  expected: ReadonlyArray<number | null>,
  what: string,
  names?: readonly string[],
): void {
  const want = () =>
    names ? `[${expected.map((d, i) => (d === null ? names[i] : `${names[i]}=${d}`)).join(', ')}]` : formatShape(expected);
  if (!(t instanceof tf.Tensor)) {
    const got = t === null ? 'null' : Array.isArray(t) ? 'an array' : `a value of type ${typeof t}`;
    throw new Error(`${what}: expected a tf.Tensor of shape ${want()}, got ${got}`);
  }
  if (t.isDisposed) throw new Error(`${what}: expected a live tf.Tensor of shape ${want()}, got a disposed one`);
  const ok = t.rank === expected.length && expected.every((d, i) => d === null || d === t.shape[i]);
  if (ok) return;
  throw new Error(`${what}: expected shape ${want()}, got ${formatShape(t.shape)}`);
}

/**
 * Throws an `Error` naming the expected and actual dtypes unless `t.dtype` is one of `dtypes`.
 */
export function assertDtype(t: tf.Tensor, dtypes: readonly tf.DataType[], what: string): void {
  if (!dtypes.includes(t.dtype)) {
    throw new Error(`${what}: expected dtype ${dtypes.join(' or ')}, got ${t.dtype}`);
  }
}
