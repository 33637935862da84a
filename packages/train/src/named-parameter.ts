import type * as tf from '@tensorflow/tfjs-core';
import type { Module, ParameterLayout } from '@vlm/core';

/**
 * One trained weight: its PyTorch state-dict name, the TF.js variable that holds it, and how
 * that variable is laid out relative to PyTorch (`'transposed'` for Linear kernels). Checkpoints
 * and optimizer state are written under `name`, in PyTorch layout.
 */
export interface NamedParameter {
  /** The state-dict name (`perceiver.layers.0.attn.to_q.weight`). */
  name: string;
  /** The variable the optimizer updates. */
  variable: tf.Variable;
  /** The variable's layout relative to PyTorch. Default: `'same'`. */
  layout?: ParameterLayout;
}

/**
 * What {@link namedParameters} accepts: a module, modules by prefix (`{ perceiver, flamingo }`
 * gives `perceiver.*` and `flamingo.*` names), named variables, or bare variables (named by
 * `variable.name`).
 */
export type ParametersInput = Module | Record<string, Module> | NamedParameter[] | Array<[string, tf.Variable]> | tf.Variable[];

const isModule = (x: unknown): x is Module =>
  typeof x === 'object' && x !== null && typeof (x as Module).namedParameters === 'function' && typeof (x as Module).parameterLayout === 'function';

/**
 * The trainable weights to hand to an optimizer, under PyTorch names. From modules, only the
 * trainable weights are taken (frozen ones, such as the LM inside a `FlamingoLM`, are skipped,
 * as `trainableVariables` of @vlm/core does). Variables given one by one must be trainable: a
 * frozen one is refused with an `Error` naming it. Two weights under one name, or one variable
 * under two names, are an `Error` too.
 *
 * @example
 * ```ts
 * const params = namedParameters({ perceiver: resampler, flamingo });
 * params.map((p) => p.name); // ['perceiver.latents', …, 'flamingo.gated_cross_attn_layers.1.attn_gate', …]
 * ```
 */
export function namedParameters(input: ParametersInput): NamedParameter[] {
  let out: NamedParameter[];
  if (isModule(input)) {
    out = fromModule(input, '');
  } else if (Array.isArray(input)) {
    out = (input as Array<NamedParameter | [string, tf.Variable] | tf.Variable>).map((p) => {
      if (Array.isArray(p)) return { name: p[0], variable: p[1] };
      if ('assign' in p) return { name: p.name, variable: p };
      return p;
    });
    for (const p of out) {
      if (!p.variable.trainable) {
        throw new Error(`namedParameters: '${p.name}' is not trainable (variable.trainable === false); a frozen weight cannot be trained — unfreeze it or leave it out`);
      }
    }
  } else {
    out = Object.entries(input).flatMap(([prefix, module]) => {
      if (!isModule(module)) throw new Error(`namedParameters: expected a @vlm/core Module under '${prefix}', got ${typeof module}`);
      return fromModule(module, `${prefix}.`);
    });
  }
  const names = new Set<string>();
  const variables = new Map<tf.Variable, string>();
  for (const p of out) {
    if (names.has(p.name)) throw new Error(`namedParameters: two weights are named '${p.name}'`);
    const other = variables.get(p.variable);
    if (other !== undefined) throw new Error(`namedParameters: one variable is listed twice, as '${other}' and '${p.name}'`);
    if (p.variable.dtype !== 'float32') throw new Error(`namedParameters: '${p.name}' has dtype ${p.variable.dtype}, expected float32`);
    names.add(p.name);
    variables.set(p.variable, p.name);
  }
  if (out.length === 0) throw new Error('namedParameters: no trainable weights (every weight is frozen, or none was given)');
  return out;
}

function fromModule(module: Module, prefix: string): NamedParameter[] {
  return module
    .namedParameters()
    .filter(([, v]) => v.trainable)
    .map(([name, variable]) => ({ name: prefix + name, variable, layout: module.parameterLayout(name) }));
}
