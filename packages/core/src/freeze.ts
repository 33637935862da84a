import type * as tf from '@tensorflow/tfjs-core';
import type { Module } from './module';

/**
 * Freezes every weight of `module` (and its descendants): `trainable` becomes false, so
 * optimizers, `tf.variableGrads()` without a variable list and {@link trainableVariables} skip
 * them, and a training step leaves them bit-identical. Returns the module.
 *
 * @example
 * ```ts
 * const lm = freeze(loadedLanguageModel);
 * countParameters(lm, { trainableOnly: true }); // 0
 * ```
 */
export function freeze<M extends Module>(module: M): M {
  for (const v of module.parameters()) v.trainable = false;
  return module;
}

/** Makes every weight of `module` trainable again. Returns the module. */
export function unfreeze<M extends Module>(module: M): M {
  for (const v of module.parameters()) v.trainable = true;
  return module;
}

/**
 * The trainable weights of one or more modules, in state-dict order: the variable list to
 * hand to an optimizer.
 *
 * @example
 * ```ts
 * const vars = trainableVariables(bridge);
 * optimizer.minimize(() => loss(), false, vars);
 * ```
 */
export function trainableVariables(...modules: Module[]): tf.Variable[] {
  return modules.flatMap((m) => m.parameters().filter((v) => v.trainable));
}

/** Options of {@link countParameters}. */
export interface CountParametersOptions {
  /** Count only trainable weights. Default: `false`. */
  trainableOnly?: boolean;
}

/** Number of scalar weights in `module`, as `sum(p.numel() for p in module.parameters())`. */
export function countParameters(module: Module, options: CountParametersOptions = {}): number {
  return module
    .parameters()
    .filter((v) => !options.trainableOnly || v.trainable)
    .reduce((n, v) => n + v.size, 0);
}
