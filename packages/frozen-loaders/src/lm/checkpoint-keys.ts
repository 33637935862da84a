import type { CausalLM } from './causal-lm';

/** How the keys of a checkpoint map onto a model. */
export interface CheckpointKeyPlan {
  /** Checkpoint key → model state-dict key, for every key that is loaded. */
  mapped: Map<string, string>;
  /** Checkpoint keys skipped on purpose: outside `keyPrefix`, buffers, a tied `lm_head.weight`. */
  ignoredKeys: string[];
}

/** Options of {@link planCheckpointKeys}. */
export interface CheckpointKeyOptions {
  /**
   * Only keys under this prefix belong to the LM (stripped before matching); others are ignored,
   * e.g. `'language_model.'` in a BLIP-2 checkpoint. Default: none.
   */
  keyPrefix?: string;
}

/**
 * Matches checkpoint tensors (name → PyTorch shape) against the model's state dict and throws
 * ONE `Error` that lists every missing key, unexpected key and shape mismatch. Base-model
 * prefixes are added or stripped by the model's `checkpointKey`.
 *
 * @example
 * ```ts
 * const plan = planCheckpointKeys(lm, { 'h.0.ln_1.weight': [32], 'h.0.attn.bias': [1, 1, 32, 32] });
 * plan.mapped.get('h.0.ln_1.weight'); // 'transformer.h.0.ln_1.weight'
 * plan.ignoredKeys; // ['h.0.attn.bias']
 * ```
 */
export function planCheckpointKeys(model: CausalLM, shapes: Record<string, readonly number[]>, options: CheckpointKeyOptions = {}): CheckpointKeyPlan {
  const expected = model.stateDictShapes();
  const prefix = options.keyPrefix ?? '';
  const mapped = new Map<string, string>();
  const owner = new Map<string, string>();
  const ignoredKeys: string[] = [];
  const unexpected: string[] = [];
  const duplicates: string[] = [];
  const mismatches: string[] = [];
  for (const [key, shape] of Object.entries(shapes)) {
    if (!key.startsWith(prefix)) {
      ignoredKeys.push(key);
      continue;
    }
    const target = model.checkpointKey(key.slice(prefix.length));
    if (target === null) {
      ignoredKeys.push(key);
      continue;
    }
    const want = expected[target];
    if (!want) {
      unexpected.push(key);
      continue;
    }
    if (owner.has(target)) {
      duplicates.push(`${key} and ${owner.get(target)} both map to ${target}`);
      continue;
    }
    owner.set(target, key);
    if (want.length !== shape.length || want.some((d, i) => d !== shape[i])) {
      mismatches.push(`${key}: expected shape [${want.join(', ')}], got [${shape.join(', ')}]`);
      continue;
    }
    mapped.set(key, target);
  }
  const missing = Object.keys(expected).filter((k) => !owner.has(k));
  const problems: string[] = [];
  const list = (title: string, keys: string[]) => keys.length && problems.push(`${title} (${keys.length}):\n${keys.map((k) => `  ${k}`).join('\n')}`);
  list('missing keys', missing.map((k) => prefix + k));
  list('unexpected keys', unexpected);
  list('duplicate keys', duplicates);
  list('shape mismatches', mismatches);
  if (problems.length) throw new Error(`${model.hfClass}: the checkpoint does not match the config:\n${problems.join('\n')}`);
  return { mapped, ignoredKeys };
}
