import type * as tf from '@tensorflow/tfjs-core';
import type { ParameterInfo } from './protocol';

/**
 * The parameters that {@link DataParallel} keeps equal on every thread, in an order both sides
 * share: variables (checked by their `name`), or `[name, variable]` pairs such as a `@vlm/core`
 * module's `namedParameters()` (checked by the pair's name).
 *
 * @example
 * ```ts
 * const byVariable: ParameterList = [w1, b1];                    // names: w1.name, b1.name
 * const byPath: ParameterList = resampler.namedParameters();     // names: 'queries', 'layers.0.norm.weight', ...
 * ```
 */
export type ParameterList = tf.Variable[] | Array<[string, tf.Variable]>;

/** `list` as `[name, variable]` pairs. */
export function named(list: ParameterList): Array<[string, tf.Variable]> {
  return list.map((p): [string, tf.Variable] => (Array.isArray(p) ? p : [p.name, p]));
}

/** The name TF.js gives a `tf.variable()` without one: a counter, different from thread to thread. */
const AUTOMATIC = /^\d+$/;

const describe = (p: ParameterInfo | undefined) => (p ? `'${p.name}' [${p.shape.join(', ')}] ${p.dtype}` : 'missing');

/**
 * Throws an Error naming the first parameter where `main` and worker `index`'s `theirs` differ
 * in name, shape or dtype (by position). Two automatic TF.js names count as equal.
 */
export function checkParameters(main: ParameterInfo[], theirs: ParameterInfo[], index: number): void {
  for (let i = 0; i < Math.max(main.length, theirs.length); i++) {
    const [a, b] = [main[i], theirs[i]];
    const sameName = a && b && (a.name === b.name || (AUTOMATIC.test(a.name) && AUTOMATIC.test(b.name)));
    if (sameName && a.dtype === b.dtype && a.shape.join() === b.shape.join()) continue;
    throw new Error(
      `DataParallel.start: parameter ${i} is ${describe(a)} on the main thread but ${describe(b)} in worker ${index} ` +
        `(${main.length} vs ${theirs.length} parameters; they are matched by position, then checked by name and shape)`,
    );
  }
}

/** A variable's {@link ParameterInfo}. */
export const info = ([name, v]: [string, tf.Variable]): ParameterInfo => ({ name, shape: v.shape, dtype: v.dtype });
