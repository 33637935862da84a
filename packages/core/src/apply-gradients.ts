import * as tf from '@tensorflow/tfjs-core';

/**
 * `optimizer.applyGradients(grads)` for the gradients `tf.variableGrads` (or
 * `DataParallel.grads`) returns, typed so that no cast is needed: TF.js declares `grads` as a
 * `NamedTensorMap` but `tf.train.adam()` (and the other concrete optimizers) as taking a
 * `NamedVariableMap`, so the direct call fails to typecheck (TS2345). Every name must be a
 * registered variable and every gradient its shape; otherwise an `Error` lists what is wrong and
 * no weight changes. The gradients are not disposed (they are the caller's).
 *
 * Equivalent without the helper: type the optimizer as the base class
 * (`const opt: tf.Optimizer = tf.train.adam(1e-3)`), or let the optimizer take the gradients
 * itself with `opt.minimize(loss, false, vars)`.
 *
 * @example
 * ```ts
 * const optimizer = tf.train.adam(1e-3);
 * const { value, grads } = tf.variableGrads(() => loss(), trainableVariables(bridge));
 * applyGradients(optimizer, grads);
 * tf.dispose([value, ...Object.values(grads)]);
 * ```
 */
export function applyGradients(optimizer: tf.Optimizer, grads: tf.NamedTensorMap): void {
  const registered = tf.engine().registeredVariables;
  const problems: string[] = [];
  for (const [name, g] of Object.entries(grads)) {
    const v = registered[name];
    if (!v) problems.push(`'${name}' is not a registered variable`);
    else if (!tf.util.arraysEqual(v.shape, g.shape)) problems.push(`'${name}': gradient [${g.shape}] for a variable [${v.shape}]`);
  }
  if (problems.length) throw new Error(`applyGradients: ${problems.join('; ')}`);
  optimizer.applyGradients(grads);
}
