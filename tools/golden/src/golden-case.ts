import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '@vlm/core';

/** One reference case: its sidecar JSON and every tensor of its safetensors file. */
export interface GoldenCase {
  /** The case's path under the golden folder, without extension: `seed_perceiver_v17`, `blip2/tiny-blip2-opt/case`. */
  name: string;
  /**
   * The folder that holds the case files. Whole-model cases read their checkpoint from it
   * (`blip2/tiny-blip2-opt/`: `config.json` and `model.safetensors` beside `case.json`).
   */
  dir: string;
  /** The parsed `<case>.json` sidecar (module, config, forward, gates, tolerance, keys, …). */
  sidecar: Record<string, any>;
  /** Every tensor of `<case>.safetensors` by key (`param.*`, `input.*`, `output.*`, `grad_*`). */
  tensors: Record<string, tf.Tensor>;
}

/**
 * Runs a case through the public API of a package and returns the computed tensors under the
 * golden keys they must match (`output.out`, `grad_input.x`, `grad_param.layers.0.to_q.weight`, …).
 * Every `output.*` and `grad_*` key of the case must be returned: a missing one fails the case.
 * A training case (whose step is async) returns a promise.
 */
export type GoldenAdapter = (c: GoldenCase) => Record<string, tf.Tensor> | Promise<Record<string, tf.Tensor>>;

/** `param.<key>` tensors of a case as a state dict (prefix stripped). */
export function paramsOf(c: GoldenCase): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(c.tensors)) if (k.startsWith('param.')) out[k.slice('param.'.length)] = t;
  return out;
}

/** The tensor under `key`, or an Error naming the case and the key. */
export function tensorOf(c: GoldenCase, key: string): tf.Tensor {
  const t = c.tensors[key];
  if (!t) throw new Error(`case ${c.name}: no tensor '${key}'`);
  return t;
}

/**
 * The standard golden recipe: `loss = sum(forward(inputs) * input.loss_weight)`; returns
 * `output.out`, `grad_param.<name>` for every weight of `module` (in PyTorch layout) and
 * `grad_input.<name>` for every float input in `floatInputs`.
 *
 * @param module the module whose weights are differentiated (already loaded from the case).
 * @param floatInputs inputs to differentiate, by golden input name (`x`, `vision_features`, …).
 * @param forward computes `output.out` from the float inputs (other inputs are closed over).
 */
export function lossAndGrads(
  c: GoldenCase,
  module: Module,
  floatInputs: Record<string, tf.Tensor>,
  forward: (inputs: Record<string, tf.Tensor>) => tf.Tensor,
): Record<string, tf.Tensor> {
  const w = tensorOf(c, 'input.loss_weight');
  // Inputs become temporary variables so one backward pass gives input and parameter grads.
  const inputVars = Object.fromEntries(Object.entries(floatInputs).map(([n, t]) => [n, tf.variable(t, true)]));
  try {
    const result: Record<string, tf.Tensor> = { 'output.out': tf.tidy(() => forward(inputVars)) };
    const params = module.namedParameters();
    const all = [...params.map(([, v]) => v), ...Object.values(inputVars)];
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(forward(inputVars), w)) as tf.Scalar, all);
    value.dispose();
    const gradOf = (v: tf.Variable) => grads[v.name] ?? tf.zerosLike(v);
    for (const [name, v] of params) {
      const g = gradOf(v);
      result[`grad_param.${name}`] = module.toStateDictLayout(name, g);
      g.dispose();
    }
    for (const [name, v] of Object.entries(inputVars)) result[`grad_input.${name}`] = gradOf(v);
    return result;
  } finally {
    tf.dispose(Object.values(inputVars));
  }
}
