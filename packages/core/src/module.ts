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
  /** `null` while the weight is a placeholder (built under {@link skipInit}, not loaded yet). */
  variable: tf.Variable | null;
  /** Shape of the variable (the TF.js layout). */
  shape: number[];
  layout: ParameterLayout;
  trainable: boolean;
}

/**
 * A weight given by its shape and a function that makes its initial value, so that
 * {@link skipInit} can build the module without running it. `init` must return a tensor of
 * exactly `shape` (the TF.js layout: `[in, out]` for a `'transposed'` Linear kernel).
 */
export interface ParameterInit {
  /** Shape of the tensor `init` returns. */
  shape: number[];
  /** Makes the initial value (random or constant); the module takes ownership of it. */
  init: () => tf.Tensor;
}

let skipping = 0;

/**
 * Builds modules without initialising their weights, as PyTorch's `torch.nn.utils.skip_init`
 * (or building on the `meta` device): every weight registered with a {@link ParameterInit}
 * inside `build` is a placeholder that holds a shape and no memory, and gets its value from
 * the first {@link Module.loadStateDict} that names it (which takes the checkpoint tensor's
 * data without another copy). Loaders use it: random values that the checkpoint then
 * overwrites cost time and, for a moment, a second copy of the model. Reading a placeholder
 * (a forward, `parameters()`, `stateDict()`) before it is loaded throws, naming it.
 *
 * @example
 * ```ts
 * const fc = skipInit(() => new Linear({ inFeatures: 4096, outFeatures: 4096 })); // no memory yet
 * fc.stateDictShapes(); // { weight: [4096, 4096], bias: [4096] }
 * fc.loadStateDict(checkpointTensors); // now usable
 * ```
 */
export function skipInit<T>(build: () => T): T {
  skipping++;
  try {
    return build();
  } finally {
    skipping--;
  }
}

/**
 * Whether modules built now are inside {@link skipInit} (their weights are placeholders), so that
 * code which initialises weights after construction can leave them to the checkpoint.
 */
export function isInitSkipped(): boolean {
  return skipping > 0;
}

/** Tensors to load one at a time with {@link Module.loadStateDictFrom}. */
export interface StateDictSource {
  /** PyTorch shape and dtype of every tensor to load, by the module's dotted weight names. */
  shapes: Record<
    string,
    {
      /** The tensor's shape in PyTorch layout. */
      shape: readonly number[];
      /** The TF.js dtype `read` will give it. */
      dtype: tf.DataType;
    }
  >;
  /** Makes the tensor `name` (in PyTorch layout); the module disposes it once written. */
  read(name: string): tf.Tensor;
  /**
   * Makes the 2-D tensor `name` already transposed, for weights kept transposed (Linear
   * kernels), when the source can do that cheaper than a transpose after reading (a
   * `SafetensorsFile` decodes straight into that layout). Optional.
   */
  readTransposed?(name: string): tf.Tensor;
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
   * Registers a weight under `name`, from its initial value or from a `ParameterInit`
   * (shape + init function, which `skipInit` leaves uncalled). The module takes ownership
   * of the value (it is disposed after being copied into a new `tf.Variable`). Read it back with
   * {@link Module.parameter} at each use rather than keeping a reference: `ModuleLayer` may swap
   * the variable.
   */
  protected registerParameter(name: string, value: tf.Tensor | ParameterInit, options: ParameterOptions = {}): void {
    assertFreshName(this, name);
    const layout = options.layout ?? 'same';
    const trainable = options.trainable ?? true;
    const lazy = !(value instanceof tf.Tensor);
    const shape = [...value.shape];
    if (layout === 'transposed' && shape.length !== 2) {
      if (!lazy) value.dispose();
      throw new Error(`Parameter '${name}': a transposed parameter must be 2-D, got shape ${formatShape(shape)}`);
    }
    if (lazy && skipping > 0) {
      this.parametersByName.set(name, { variable: null, shape, layout, trainable });
      return;
    }
    const tensor = lazy ? value.init() : value;
    if (lazy && !sameShape(tensor.shape, shape)) {
      tensor.dispose();
      throw new Error(`Parameter '${name}': init returned shape ${formatShape(tensor.shape)}, expected ${formatShape(shape)}`);
    }
    const variable = tf.variable(tensor, trainable);
    tensor.dispose();
    this.parametersByName.set(name, { variable, shape, layout, trainable });
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
    return this.namedEntries(prefix).map(([name, entry]) => [name, loaded(this, name, entry)]);
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
    for (const [name, entry] of this.namedEntries()) {
      const variable = loaded(this, name, entry);
      out[name] = entry.layout === 'transposed' ? tf.transpose(variable) : tf.clone(variable);
    }
    return out;
  }

  /**
   * The PyTorch shape of each weight, by dotted name (no tensors are created).
   */
  stateDictShapes(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [name, { shape, layout }] of this.namedEntries()) {
      out[name] = layout === 'transposed' ? [...shape].reverse() : [...shape];
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
    // Every entry is checked before the first write: a rejected dict leaves the module untouched.
    const result = this.checkStateDict(dict, options, true);
    for (const [name, value] of Object.entries(dict)) this.writeParameter(name, value);
    return result;
  }

  /**
   * Loads weights one tensor at a time, so that a checkpoint never needs to be in memory as a
   * whole: `source.shapes` (names, PyTorch shapes, dtypes) is checked first exactly as
   * {@link Module.loadStateDict} checks a dict (nothing is read when it throws); then each
   * tensor is made by `source.read(name)`, written and disposed before the next is read. A
   * placeholder weight (built under `skipInit`) takes the tensor's data without a copy.
   * If `read` throws part-way, the weights read so far stay loaded.
   *
   * @example
   * ```ts
   * const file = SafetensorsFile.open(bytes);
   * const shapes = Object.fromEntries(file.names().map((k) => [k, { shape: file.entry(k).shape, dtype: 'float32' }]));
   * skipInit(() => new Linear({ inFeatures: 4, outFeatures: 2 })).loadStateDictFrom({ shapes, read: (k) => file.readTensor(k) });
   * ```
   */
  loadStateDictFrom(source: StateDictSource, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const result = this.checkStateDict(source.shapes, options);
    for (const name of Object.keys(source.shapes)) {
      const entry = this.findEntry(name);
      if (!entry) continue; // unexpected (non-strict)
      const transposed = entry.layout === 'transposed' && source.readTransposed !== undefined;
      const value = transposed ? source.readTransposed!(name) : source.read(name);
      try {
        if (transposed) this.writeStored(entry, value);
        else this.writeParameter(name, value);
      } finally {
        value.dispose();
      }
    }
    return result;
  }

  /**
   * The key, shape and dtype checks of {@link Module.loadStateDict} (with `liveTensors`, also that
   * every known entry is a live tf.Tensor); throws one Error listing every problem.
   */
  private checkStateDict(
    dict: Record<string, { shape: readonly number[]; dtype: tf.DataType }>,
    options: LoadStateDictOptions,
    liveTensors = false,
  ): LoadStateDictResult {
    const strict = options.strict ?? true;
    const entries = new Map(this.namedEntries());
    const missingKeys = [...entries.keys()].filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !entries.has(k));
    const invalid: string[] = [];
    const mismatches: string[] = [];
    const problems: string[] = [];
    for (const [name, { shape, layout }] of entries) {
      if (!(name in dict)) continue;
      const value = dict[name];
      const raw: unknown = value; // a state dict from outside may hold anything
      if (liveTensors && (!(raw instanceof tf.Tensor) || raw.isDisposed)) {
        invalid.push(`  ${name}: expected a live tf.Tensor, got ${describeValue(raw)}`);
        continue;
      }
      if (value === undefined) continue;
      const expected = layout === 'transposed' ? [...shape].reverse() : shape;
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
    return { missingKeys, unexpectedKeys };
  }

  /** Writes `value` (PyTorch layout, checked) into weight `name`, if the module has it. */
  private writeParameter(name: string, value: tf.Tensor): void {
    const entry = this.findEntry(name);
    if (!entry) return;
    const { variable, layout, trainable } = entry;
    // A placeholder (skipInit) becomes a variable that shares the value's data: no copy.
    if (variable === null) entry.variable = tf.tidy(() => tf.variable(layout === 'transposed' ? tf.transpose(value) : value, trainable));
    else tf.tidy(() => variable.assign(layout === 'transposed' ? tf.transpose(value) : value));
  }

  /** Writes `value`, already in the variable's layout and checked, into `entry`. */
  private writeStored(entry: ParameterEntry, value: tf.Tensor): void {
    if (!sameShape(value.shape, entry.shape)) {
      throw new Error(`${this.constructor.name}: readTransposed gave shape ${formatShape(value.shape)}, expected ${formatShape(entry.shape)}`);
    }
    const { variable, trainable } = entry;
    if (variable === null) entry.variable = tf.variable(value, trainable);
    else variable.assign(value);
  }

  /** The entry of dotted weight name `name`, found by walking the children. */
  private findEntry(name: string): ParameterEntry | undefined {
    const own = this.parametersByName.get(name);
    if (own) return own;
    const dot = name.indexOf('.');
    return dot < 0 ? undefined : this.childrenByName.get(name.slice(0, dot))?.findEntry(name.slice(dot + 1));
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
    if (!sameShape(entry.shape, variable.shape)) {
      throw new Error(`Parameter '${name}': expected shape ${formatShape(entry.shape)}, got ${formatShape(variable.shape)}`);
    }
    const old = loaded(this, name, entry);
    entry.variable = variable;
    return old;
  }

  /** Reads a registered weight of this module (not of a child) by its local name. */
  protected parameter(name: string): tf.Variable {
    const entry = this.parametersByName.get(name);
    if (!entry) throw new Error(`${this.constructor.name} has no parameter '${name}'`);
    return loaded(this, name, entry);
  }

  /** Disposes every weight of this module and its descendants (placeholders hold nothing). */
  dispose(): void {
    for (const [, { variable }] of this.namedEntries()) variable?.dispose();
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

function loaded(module: Module, name: string, entry: ParameterEntry): tf.Variable {
  if (entry.variable === null) {
    throw new Error(
      `${module.constructor.name}: weight '${name}' ${formatShape(entry.shape)} has no value: the module was built with skipInit and this weight was never loaded (loadStateDict)`,
    );
  }
  return entry.variable;
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
