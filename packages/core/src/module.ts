import * as tf from '@tensorflow/tfjs-core';
import { formatShape } from './shape-checks';

/**
 * A PyTorch-style state dict: dotted parameter names (`layers.0.cross_attn.in_proj_weight`)
 * mapped to tensors in PyTorch layout (a Linear `weight` is `[out, in]`).
 */
export type StateDict = Record<string, tf.Tensor>;

/** How a parameter is kept in TF.js relative to its PyTorch layout. */
export type ParameterLayout = 'same' | 'transposed';

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /**
   * Like PyTorch's `strict`: when true, any missing key, unexpected key or shape mismatch
   * throws one `Error` that lists all of them. When false, matching keys are loaded and
   * the rest are reported in the result (shape mismatches still throw).
   * Default: `true`.
   */
  strict?: boolean;
}

/** What {@link Module.loadStateDict} did not load, as in PyTorch's `_IncompatibleKeys`. */
export interface LoadStateDictResult {
  /** Parameters of the module that the dict did not contain. */
  missingKeys: string[];
  /** Keys of the dict that name no parameter of the module. */
  unexpectedKeys: string[];
}

interface ParameterEntry {
  variable: tf.Variable;
  layout: ParameterLayout;
}

/** Options of {@link Module.registerParameter}. */
export interface ParameterOptions {
  /**
   * `'transposed'` keeps the 2-D tensor transposed relative to PyTorch (Linear kernels are
   * `[in, out]` here so that `x · W` is a plain 2-D matMul); state dicts still use the
   * PyTorch layout. Default: `'same'`.
   */
  layout?: ParameterLayout;
  /** Default: `true`. */
  trainable?: boolean;
}

/**
 * Base class of every `@vlm` module: a tree of named children and named weights, like
 * `torch.nn.Module`.
 *
 * A subclass registers its weights with {@link Module.registerParameter} and its children with
 * {@link Module.registerModule} in its constructor; every weight is then reachable under a
 * unique dotted name (`layers.0.cross_attn.in_proj_weight`), which is what
 * {@link Module.stateDict} and {@link Module.loadStateDict} use. Weights are `tf.Variable`s
 * owned by the module: call {@link Module.dispose} when done.
 *
 * @example
 * ```ts
 * class TwoLayer extends Module {
 *   readonly fc1 = this.registerModule('fc1', new Linear({ inFeatures: 8, outFeatures: 16 }));
 *   readonly fc2 = this.registerModule('fc2', new Linear({ inFeatures: 16, outFeatures: 4 }));
 *   forward(x: tf.Tensor): tf.Tensor {
 *     return tf.tidy(() => this.fc2.forward(tf.relu(this.fc1.forward(x))));
 *   }
 * }
 * const m = new TwoLayer();
 * Object.keys(m.stateDict()); // ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
 * ```
 */
export abstract class Module {
  private readonly parametersByName = new Map<string, ParameterEntry>();
  private readonly childrenByName = new Map<string, Module>();

  /**
   * Registers a weight under `name`. The module takes ownership of `value` (it is disposed
   * after being copied into a new `tf.Variable`). Read it back with {@link Module.parameter}
   * at each use rather than keeping a reference: `ModuleLayer` may swap the variable.
   */
  protected registerParameter(name: string, value: tf.Tensor, options: ParameterOptions = {}): void {
    assertFreshName(this, name);
    const layout = options.layout ?? 'same';
    if (layout === 'transposed' && value.rank !== 2) {
      throw new Error(`Parameter '${name}': a transposed parameter must be 2-D, got shape ${formatShape(value.shape)}`);
    }
    const variable = tf.variable(value, options.trainable ?? true);
    value.dispose();
    this.parametersByName.set(name, { variable, layout });
  }

  /** Registers a child module under `name` (its weights become `name.*`) and returns it. */
  protected registerModule<M extends Module>(name: string, module: M): M {
    assertFreshName(this, name);
    this.childrenByName.set(name, module);
    return module;
  }

  /** The direct children, in registration order. */
  namedChildren(): Array<[string, Module]> {
    return [...this.childrenByName.entries()];
  }

  /**
   * Every weight of this module and its descendants under its dotted name, in PyTorch's
   * `state_dict` order (own weights first, then each child in registration order).
   */
  namedParameters(prefix = ''): Array<[string, tf.Variable]> {
    const out: Array<[string, tf.Variable]> = [];
    for (const [name, entry] of this.parametersByName) out.push([prefix + name, entry.variable]);
    for (const [name, child] of this.childrenByName) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
  }

  /** All weights, in {@link Module.namedParameters} order. */
  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, v]) => v);
  }

  /**
   * The weights in PyTorch layout under their dotted names. The tensors are new: the caller
   * owns and disposes them.
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [name, { variable, layout }] of this.namedEntries()) {
      out[name] = layout === 'transposed' ? tf.transpose(variable) : tf.clone(variable);
    }
    return out;
  }

  /**
   * The PyTorch shape of each weight, by dotted name (no tensors are created).
   */
  stateDictShapes(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [name, { variable, layout }] of this.namedEntries()) {
      out[name] = layout === 'transposed' ? [...variable.shape].reverse() : [...variable.shape];
    }
    return out;
  }

  /**
   * How the weight `name` (dotted) is kept relative to PyTorch: `'transposed'` for Linear-style
   * kernels. A gradient or optimizer slot of such a weight is transposed back with
   * {@link Module.toStateDictLayout}.
   */
  parameterLayout(name: string): ParameterLayout {
    const entry = this.namedEntries().find(([n]) => n === name);
    if (!entry) throw new Error(`${this.constructor.name} has no parameter '${name}'`);
    return entry[1].layout;
  }

  /**
   * Puts a tensor shaped like the variable of weight `name` (its value, its gradient) into the
   * PyTorch layout that {@link Module.stateDict} uses. Returns a new tensor.
   */
  toStateDictLayout(name: string, t: tf.Tensor): tf.Tensor {
    return this.parameterLayout(name) === 'transposed' ? tf.transpose(t) : tf.clone(t);
  }

  /**
   * Copies weights from a PyTorch-layout state dict, with PyTorch semantics. In strict mode
   * (the default) every missing key, unexpected key and shape mismatch is listed in ONE error
   * and nothing is loaded. Values are copied; the caller keeps ownership of `dict`.
   */
  loadStateDict(dict: StateDict, options: LoadStateDictOptions = {}): LoadStateDictResult {
    if (typeof dict !== 'object' || dict === null || Array.isArray(dict) || dict instanceof tf.Tensor) {
      throw new Error(`loadStateDict for ${this.constructor.name}: expected a state dict (an object of tensors by name), got ${describeValue(dict)}`);
    }
    const strict = options.strict ?? true;
    const entries = new Map(this.namedEntries());
    const missingKeys = [...entries.keys()].filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !entries.has(k));
    const invalid: string[] = [];
    const mismatches: string[] = [];
    const problems: string[] = [];
    // Every entry is checked before the first write: a rejected dict leaves the module untouched.
    for (const [name, { variable, layout }] of entries) {
      if (!(name in dict)) continue;
      const value: unknown = dict[name];
      if (!(value instanceof tf.Tensor) || value.isDisposed) {
        invalid.push(`  ${name}: expected a live tf.Tensor, got ${describeValue(value)}`);
        continue;
      }
      const expected = layout === 'transposed' ? [...variable.shape].reverse() : variable.shape;
      if (!sameShape(value.shape, expected)) {
        mismatches.push(`  ${name}: expected shape ${formatShape(expected)}, got ${formatShape(value.shape)}`);
      } else if (value.dtype !== 'float32') {
        problems.push(`  ${name}: expected dtype float32, got ${value.dtype}`);
      }
    }
    const errors: string[] = [];
    if (strict && missingKeys.length) errors.push(`Missing key(s) in state_dict:\n${missingKeys.map((k) => `  ${k}`).join('\n')}`);
    if (strict && unexpectedKeys.length) errors.push(`Unexpected key(s) in state_dict:\n${unexpectedKeys.map((k) => `  ${k}`).join('\n')}`);
    if (invalid.length) errors.push(`Value(s) that are not live tensors:\n${invalid.join('\n')}`);
    if (mismatches.length) errors.push(`Size mismatch(es):\n${mismatches.join('\n')}`);
    if (problems.length) errors.push(`Dtype mismatch(es):\n${problems.join('\n')}`);
    if (errors.length) {
      throw new Error(`Error(s) in loading state_dict for ${this.constructor.name}:\n${errors.join('\n')}`);
    }
    for (const [name, { variable, layout }] of entries) {
      const value = dict[name];
      if (value === undefined) continue;
      tf.tidy(() => variable.assign(layout === 'transposed' ? tf.transpose(value) : value));
    }
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Swaps the variable behind a weight for another of the same shape (the old one is not
   * disposed). Used by `ModuleLayer` so that tfjs-layers owns the variables.
   * @internal
   */
  replaceParameterVariable(name: string, variable: tf.Variable): tf.Variable {
    const dot = name.indexOf('.');
    if (dot >= 0 && !this.parametersByName.has(name)) {
      const child = this.childrenByName.get(name.slice(0, dot));
      if (child) return child.replaceParameterVariable(name.slice(dot + 1), variable);
    }
    const entry = this.parametersByName.get(name);
    if (!entry) throw new Error(`${this.constructor.name} has no parameter '${name}'`);
    if (!sameShape(entry.variable.shape, variable.shape)) {
      throw new Error(`Parameter '${name}': expected shape ${formatShape(entry.variable.shape)}, got ${formatShape(variable.shape)}`);
    }
    const old = entry.variable;
    entry.variable = variable;
    return old;
  }

  /** Reads a registered weight of this module (not of a child) by its local name. */
  protected parameter(name: string): tf.Variable {
    const entry = this.parametersByName.get(name);
    if (!entry) throw new Error(`${this.constructor.name} has no parameter '${name}'`);
    return entry.variable;
  }

  /** Disposes every weight of this module and its descendants. */
  dispose(): void {
    for (const [, v] of this.namedParameters()) v.dispose();
  }

  private namedEntries(prefix = ''): Array<[string, ParameterEntry]> {
    const out: Array<[string, ParameterEntry]> = [];
    for (const [name, entry] of this.parametersByName) out.push([prefix + name, entry]);
    for (const [name, child] of this.childrenByName) out.push(...child.namedEntries(`${prefix}${name}.`));
    return out;
  }

  /** @internal */
  hasLocalName(name: string): boolean {
    return this.parametersByName.has(name) || this.childrenByName.has(name);
  }
}

function assertFreshName(module: Module, name: string): void {
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new Error(`Invalid name '${name}': a parameter or child name is letters, digits and '_' (dots join levels)`);
  }
  if (module.hasLocalName(name)) throw new Error(`${module.constructor.name} already has a parameter or child named '${name}'`);
}

function describeValue(v: unknown): string {
  if (v instanceof tf.Tensor) return v.isDisposed ? `a disposed tensor of shape ${formatShape(v.shape)}` : `a tensor of shape ${formatShape(v.shape)}`;
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'object') {
    const keys = Object.keys(v).slice(0, 5);
    return `an object that is not a tf.Tensor (keys: ${keys.length ? keys.join(', ') : 'none'})`;
  }
  return `a ${typeof v}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
