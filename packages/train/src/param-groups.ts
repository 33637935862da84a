import type { NamedParameter } from './named-parameter';

/** Hyperparameters a parameter group may set for itself (unset ones take the optimizer's). */
export interface ParamGroupOptions {
  /** Learning rate of the group (before the schedule's factor). */
  lr?: number;
  /** Weight decay of the group. */
  weightDecay?: number;
}

/**
 * A set of parameters that share hyperparameters, as a `param_groups` entry of a PyTorch
 * optimizer.
 */
export interface ParamGroup extends ParamGroupOptions {
  /** The group's name (in checkpoints and metrics). */
  name: string;
  /** Its parameters. */
  params: NamedParameter[];
}

/** One rule of {@link paramGroups}: the parameters it matches form a group. */
export interface ParamGroupRule extends ParamGroupOptions {
  /** The group's name. Default: `group<i>`. */
  name?: string;
  /** Which parameters belong to the group: a pattern tested on the name, or a predicate. */
  match: RegExp | ((param: NamedParameter) => boolean);
}

const test = (rule: ParamGroupRule, p: NamedParameter): boolean =>
  rule.match instanceof RegExp ? new RegExp(rule.match.source, rule.match.flags.replace('g', '')).test(p.name) : rule.match(p);

/**
 * Splits parameters into groups by name pattern. Each parameter joins the group of the FIRST
 * rule that matches it; parameters no rule matches form a last group named `default` that uses
 * the optimizer's own hyperparameters. Groups that end up empty are left out. The order of
 * parameters inside a group is their order in `params`.
 *
 * @example
 * ```ts
 * const groups = paramGroups(params, [
 *   { name: 'no_decay', match: /(^|\.)(bias|.*gate|.*norm.*)$/, weightDecay: 0 },
 *   { name: 'resampler', match: /^perceiver\./, lr: 2e-4 },
 * ]);
 * const optimizer = new AdamW(groups, { lr: 1e-4, weightDecay: 0.1 });
 * ```
 */
export function paramGroups(params: NamedParameter[], rules: ParamGroupRule[]): ParamGroup[] {
  const groups: ParamGroup[] = rules.map((r, i) => {
    const g: ParamGroup = { name: r.name ?? `group${i}`, params: [] };
    if (r.lr !== undefined) g.lr = r.lr;
    if (r.weightDecay !== undefined) g.weightDecay = r.weightDecay;
    return g;
  });
  const rest: ParamGroup = { name: 'default', params: [] };
  for (const p of params) {
    const i = rules.findIndex((r) => test(r, p));
    (i >= 0 ? groups[i]! : rest).params.push(p);
  }
  const names = new Set<string>();
  const out = [...groups, rest].filter((g) => g.params.length > 0);
  for (const g of out) {
    if (names.has(g.name)) throw new Error(`paramGroups: two groups are named '${g.name}'`);
    names.add(g.name);
  }
  return out;
}

/**
 * Whether a parameter is, by the usual convention, exempt from weight decay: biases, norms,
 * gates, embeddings and every other weight with fewer than two dimensions (Flamingo's
 * `tanh(α)` gates, LayerNorm scales). Used by {@link weightDecayGroups}.
 */
export function isNoWeightDecayParameter(p: NamedParameter): boolean {
  return p.variable.rank < 2 || /(^|[._])(bias|gate|norm|ln|embed|embeddings|embed_tokens|wte|wpe)([._\d]|$)/i.test(p.name);
}

/** Options of {@link weightDecayGroups}. */
export interface WeightDecayGroupsOptions {
  /** Weight decay of the `decay` group. */
  weightDecay: number;
  /** Which parameters get no weight decay. Default: {@link isNoWeightDecayParameter}. */
  noDecay?: RegExp | ((param: NamedParameter) => boolean);
}

/**
 * The two groups OpenFlamingo and most transformer recipes train with: `decay` (matrices of the
 * bridge, with `weightDecay`) and `no_decay` (biases, norms, gates, embeddings, weight decay 0).
 *
 * @example
 * ```ts
 * const optimizer = new AdamW(weightDecayGroups(params, { weightDecay: 0.1 }), { lr: 1e-4 });
 * ```
 */
export function weightDecayGroups(params: NamedParameter[], options: WeightDecayGroupsOptions): ParamGroup[] {
  const noDecay = options.noDecay ?? isNoWeightDecayParameter;
  return paramGroups(params, [
    { name: 'no_decay', match: noDecay, weightDecay: 0 },
    { name: 'decay', match: () => true, weightDecay: options.weightDecay },
  ]);
}

/** Options of {@link flamingoParamGroups}. */
export interface FlamingoParamGroupsOptions {
  /** The base learning rate (the `decay` and `no_decay` groups'). */
  lr: number;
  /** Weight decay of the `decay` group. Default: `0.01`. */
  weightDecay?: number;
  /** The gates' learning rate as a multiple of `lr`. Default: `10`. */
  gateLrMultiplier?: number;
}

/** The names of Flamingo's `tanh` gates (OpenFlamingo's `attn_gate`, `ff_gate`). */
export const FLAMINGO_GATE_PATTERN = /(^|\.)(attn_gate|ff_gate)$/;

/**
 * OpenFlamingo's parameter groups for a Flamingo bridge, with the gates in a group of their own:
 * `gates` (`attn_gate`, `ff_gate`: lr × `gateLrMultiplier`, no weight decay), `no_decay`
 * ({@link isNoWeightDecayParameter}: norms, biases, latents, no weight decay) and `decay` (the
 * rest, `weightDecay`). The `tanh` gates start at 0 and Adam moves a parameter by about lr per
 * step, so in a few hundred steps they need a larger lr to open (the apps' recipe).
 *
 * @example
 * ```ts
 * const optimizer = new AdamW(flamingoParamGroups(namedParameters(flamingo), { lr: 1e-3 }), { lr: 1e-3 });
 * optimizer.groups.map((g) => [g.name, g.lr]); // [['gates', 0.01], ['no_decay', 0.001], ['decay', 0.001]]
 * ```
 */
export function flamingoParamGroups(params: NamedParameter[], options: FlamingoParamGroupsOptions): ParamGroup[] {
  if (!(options.lr > 0)) throw new Error(`flamingoParamGroups: expected lr > 0, got ${options.lr}`);
  const multiplier = options.gateLrMultiplier ?? 10;
  if (!(multiplier > 0)) throw new Error(`flamingoParamGroups: expected gateLrMultiplier > 0, got ${multiplier}`);
  return paramGroups(params, [
    { name: 'gates', match: FLAMINGO_GATE_PATTERN, lr: options.lr * multiplier, weightDecay: 0 },
    { name: 'no_decay', match: isNoWeightDecayParameter, weightDecay: 0 },
    { name: 'decay', match: () => true, weightDecay: options.weightDecay ?? 0.01 },
  ]);
}
