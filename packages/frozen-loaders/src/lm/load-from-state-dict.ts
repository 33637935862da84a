import type * as tf from '@tensorflow/tfjs-core';
import { freeze, skipInit } from '@vlm/core';
import type { CausalLM } from './causal-lm';
import { planCheckpointKeys, type CheckpointKeyOptions } from './checkpoint-keys';
import { createDecoderLM } from './create-decoder-lm';
import type { DecoderLMConfig } from './decoder-config';

/** Options of {@link loadDecoderLMFromStateDict}. */
export interface LoadDecoderLMOptions extends CheckpointKeyOptions {
  /** Called with the checkpoint keys that were skipped on purpose (buffers, tied head, other prefixes). */
  onIgnoredKeys?: (keys: string[]) => void;
}

/**
 * Builds a decoder LM from its config and a state dict of tensors in PyTorch layout under
 * Hugging Face names (e.g. what `readSafetensors` returned), then freezes it. Key problems are
 * listed in one `Error`. The caller keeps ownership of `stateDict` (values are copied).
 *
 * @example
 * ```ts
 * const { tensors } = readSafetensors(bytes);
 * const lm = loadDecoderLMFromStateDict(configJson, tensors);
 * tf.dispose(Object.values(tensors));
 * ```
 */
export function loadDecoderLMFromStateDict(
  config: DecoderLMConfig | unknown,
  stateDict: Record<string, tf.Tensor>,
  options: LoadDecoderLMOptions = {},
): CausalLM {
  const model = skipInit(() => createDecoderLM(config));
  try {
    const shapes = Object.fromEntries(Object.entries(stateDict).map(([k, t]) => [k, t.shape]));
    const plan = planCheckpointKeys(model, shapes, options);
    model.loadStateDict(Object.fromEntries([...plan.mapped].map(([from, to]) => [to, stateDict[from]!])));
    options.onIgnoredKeys?.(plan.ignoredKeys);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return freeze(model);
}
