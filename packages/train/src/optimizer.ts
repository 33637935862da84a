import * as tf from '@tensorflow/tfjs-core';
import type { NamedParameter } from './named-parameter';
import type { ParamGroup } from './param-groups';

/** A parameter group as an optimizer holds it: every hyperparameter resolved. */
export interface OptimizerGroup {
  /** The group's name. */
  name: string;
  /** Its parameters. */
  params: NamedParameter[];
  /** The group's base learning rate; a step uses `lr × lrFactor`. */
  lr: number;
  /** The group's weight decay. */
  weightDecay: number;
}

/** What every optimizer takes: a flat parameter list (one group) or parameter groups. */
export type OptimizerParams = NamedParameter[] | ParamGroup[];

/** Hyperparameters every optimizer has (defaults for groups that do not set their own). */
export interface OptimizerOptions {
  /** Learning rate. */
  lr: number;
  /** Weight decay. */
  weightDecay?: number;
}

/**
 * The state of an optimizer in a form that survives a checkpoint: its tensors (moments,
 * momentum buffers) under `<parameter name>.<slot>` in PyTorch layout, and small JSON-able
 * numbers (per-parameter step counts).
 */
export interface OptimizerState {
  /** The slot tensors; new tensors owned by the caller. */
  tensors: Record<string, tf.Tensor>;
  /** The optimizer's kind, hyperparameters and step counts. */
  info: OptimizerStateInfo;
}

/** The JSON part of {@link OptimizerState}. */
export interface OptimizerStateInfo {
  /** The optimizer class (`AdamW`, `Adam`, `SGD`). */
  kind: string;
  /** Each group's name, lr, weight decay and parameter names. */
  groups: Array<{
    /** The group's name. */
    name: string;
    /** Its base learning rate. */
    lr: number;
    /** Its weight decay. */
    weightDecay: number;
    /** Its parameters' names, in order. */
    params: string[];
  }>;
  /** How many updates each parameter has had, by name (PyTorch's per-parameter `step`). */
  steps: Record<string, number>;
}

const isGroupList = (p: OptimizerParams): p is ParamGroup[] => p.length > 0 && 'params' in p[0]!;

/**
 * The base of the optimizers: parameter groups, per-parameter state kept as non-trainable
 * variables, an update per parameter with PyTorch's semantics, and a state that round-trips
 * through checkpoints bit for bit. Parameters whose gradient is missing in a step are skipped,
 * as PyTorch skips `p.grad is None`.
 */
export abstract class Optimizer {
  /** The parameter groups, in order. `lr` may be changed between steps. */
  readonly groups: OptimizerGroup[];
  /** Per-parameter update counts, by parameter name. */
  protected readonly steps = new Map<string, number>();
  /** Per-parameter slot variables (`exp_avg`, …), by parameter name then slot. */
  protected readonly slots = new Map<string, Map<string, tf.Variable>>();

  /** The optimizer's kind, as written into checkpoints. */
  abstract readonly kind: string;

  /**
   * @param params the parameters (one group) or parameter groups.
   * @param defaults hyperparameters of groups that do not set their own.
   */
  protected constructor(params: OptimizerParams, defaults: OptimizerOptions) {
    if (!(Number.isFinite(defaults.lr) && defaults.lr >= 0)) throw new Error(`${new.target.name}: lr must be a finite number >= 0, got ${defaults.lr}`);
    const groups: ParamGroup[] = params.length === 0 ? [] : isGroupList(params) ? params : [{ name: 'default', params: params as NamedParameter[] }];
    if (groups.every((g) => g.params.length === 0)) throw new Error(`${new.target.name}: no parameters to optimize`);
    this.groups = groups.map((g) => ({ name: g.name, params: [...g.params], lr: g.lr ?? defaults.lr, weightDecay: g.weightDecay ?? defaults.weightDecay ?? 0 }));
    const seen = new Set<string>();
    for (const g of this.groups) {
      if (!(Number.isFinite(g.lr) && g.lr >= 0)) throw new Error(`${new.target.name}: group '${g.name}' has lr ${g.lr}, expected a finite number >= 0`);
      if (!(Number.isFinite(g.weightDecay) && g.weightDecay >= 0)) throw new Error(`${new.target.name}: group '${g.name}' has weightDecay ${g.weightDecay}, expected a finite number >= 0`);
      for (const p of g.params) {
        if (seen.has(p.name)) throw new Error(`${new.target.name}: parameter '${p.name}' is in more than one group`);
        if (!p.variable.trainable) throw new Error(`${new.target.name}: parameter '${p.name}' is not trainable (variable.trainable === false); frozen weights cannot be optimized`);
        seen.add(p.name);
      }
    }
  }

  /** Every parameter of every group, in order. */
  get parameters(): NamedParameter[] {
    return this.groups.flatMap((g) => g.params);
  }

  /**
   * Applies one update. `grads` maps `variable.name` (as `tf.variableGrads` and
   * `DataParallel.grads` return them) to the gradient; the caller keeps ownership of it. Each
   * group's learning rate for this step is `group.lr × lrFactor` (a schedule's factor).
   */
  step(grads: tf.NamedTensorMap, lrFactor = 1): void {
    if (!Number.isFinite(lrFactor)) throw new Error(`${this.kind}.step: lrFactor must be finite, got ${lrFactor}`);
    for (const group of this.groups) {
      for (const p of group.params) {
        const g = grads[p.variable.name];
        if (!g) continue;
        if (!p.variable.trainable) throw new Error(`${this.kind}.step: parameter '${p.name}' is not trainable any more (variable.trainable === false)`);
        if (g.shape.length !== p.variable.shape.length || g.shape.some((d, i) => d !== p.variable.shape[i])) {
          throw new Error(`${this.kind}.step: gradient of '${p.name}' has shape [${g.shape}], expected [${p.variable.shape}]`);
        }
        const step = (this.steps.get(p.name) ?? 0) + 1;
        this.steps.set(p.name, step);
        tf.tidy(() => this.update(p, g, group.lr * lrFactor, group.weightDecay, step));
      }
    }
  }

  /** One parameter's update, inside a `tf.tidy`; `step` counts from 1. */
  protected abstract update(p: NamedParameter, grad: tf.Tensor, lr: number, weightDecay: number, step: number): void;

  /** The slot variable `slot` of parameter `p`, created as zeros (or from `init`) on first use. */
  protected slot(p: NamedParameter, slot: string, init?: () => tf.Tensor): tf.Variable {
    let bySlot = this.slots.get(p.name);
    if (!bySlot) this.slots.set(p.name, (bySlot = new Map()));
    let v = bySlot.get(slot);
    if (!v) {
      const value = init ? init() : tf.zerosLike(p.variable);
      v = tf.variable(value, false);
      value.dispose();
      bySlot.set(slot, v);
    }
    return v;
  }

  /** Whether parameter `p` has slot `slot` yet. */
  protected hasSlot(p: NamedParameter, slot: string): boolean {
    return this.slots.get(p.name)?.has(slot) ?? false;
  }

  /** The optimizer's state: slot tensors in PyTorch layout and the step counts. */
  state(): OptimizerState {
    const tensors: Record<string, tf.Tensor> = {};
    for (const p of this.parameters) {
      for (const [slot, v] of this.slots.get(p.name) ?? []) tensors[`${p.name}.${slot}`] = p.layout === 'transposed' ? tf.transpose(v) : tf.clone(v);
    }
    return {
      tensors,
      info: {
        kind: this.kind,
        groups: this.groups.map((g) => ({ name: g.name, lr: g.lr, weightDecay: g.weightDecay, params: g.params.map((p) => p.name) })),
        steps: Object.fromEntries(this.parameters.filter((p) => this.steps.has(p.name)).map((p) => [p.name, this.steps.get(p.name)!])),
      },
    };
  }

  /**
   * Restores a state from {@link Optimizer.state} (of an optimizer of the same kind over the
   * same parameter names and shapes). Everything is checked before anything changes; a
   * mismatch is an `Error` listing what differs. Tensors are copied; the caller keeps them.
   */
  loadState(state: OptimizerState): void {
    const problems: string[] = [];
    if (state.info.kind !== this.kind) problems.push(`optimizer kind ${state.info.kind}, expected ${this.kind}`);
    const names = this.parameters.map((p) => p.name);
    const saved = state.info.groups.flatMap((g) => g.params);
    if (saved.join('\n') !== names.join('\n')) {
      const missing = names.filter((n) => !saved.includes(n));
      const extra = saved.filter((n) => !names.includes(n));
      problems.push(`parameters differ (missing from the state: ${missing.join(', ') || 'none'}; not in this optimizer: ${extra.join(', ') || 'none'}; or another order)`);
    }
    const byName = new Map(this.parameters.map((p) => [p.name, p]));
    const loads: Array<[NamedParameter, string, tf.Tensor]> = [];
    for (const [key, t] of Object.entries(state.tensors)) {
      const dot = key.lastIndexOf('.');
      const p = byName.get(key.slice(0, dot));
      if (!p) {
        problems.push(`state tensor '${key}' belongs to no parameter`);
        continue;
      }
      const shape = p.layout === 'transposed' ? [...p.variable.shape].reverse() : p.variable.shape;
      if (t.shape.join() !== shape.join() || t.dtype !== 'float32') {
        problems.push(`state tensor '${key}' is ${t.dtype} [${t.shape}], expected float32 [${shape}]`);
        continue;
      }
      loads.push([p, key.slice(dot + 1), t]);
    }
    for (const [name, n] of Object.entries(state.info.steps)) {
      if (!byName.has(name)) problems.push(`step count of unknown parameter '${name}'`);
      else if (!(Number.isSafeInteger(n) && n >= 0)) problems.push(`step count of '${name}' is ${n}, expected an integer >= 0`);
    }
    if (problems.length) throw new Error(`${this.kind}.loadState: the state does not fit this optimizer:\n  ${problems.join('\n  ')}`);
    this.disposeSlots();
    this.steps.clear();
    for (const [name, n] of Object.entries(state.info.steps)) this.steps.set(name, n);
    for (const [p, slot, t] of loads) this.slot(p, slot, () => (p.layout === 'transposed' ? tf.transpose(t) : tf.clone(t)));
  }

  /** Frees the optimizer's state (its moments and buffers), not the parameters. */
  dispose(): void {
    this.disposeSlots();
    this.steps.clear();
  }

  private disposeSlots(): void {
    for (const bySlot of this.slots.values()) for (const v of bySlot.values()) v.dispose();
    this.slots.clear();
  }
}
