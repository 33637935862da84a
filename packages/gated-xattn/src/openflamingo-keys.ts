import type { StateDict } from '@vlm/core';

const CANONICAL = /^(?:.*\.)?layers\.(\d+)\.gated_cross_attn_layer\.(.+)$/;
const ALIAS = /^(?:.*\.)?gated_cross_attn_layers\.(\d+)\.(.+)$/;

/**
 * The gated cross-attention weights of an OpenFlamingo checkpoint (a released `checkpoint.pt`
 * or a whole `Flamingo.state_dict()`), renamed for {@link FlamingoLM.loadStateDict}:
 *
 * ```text
 * lang_encoder.<decoder layers>.{i}.gated_cross_attn_layer.X  →  gated_cross_attn_layers.{i}.X
 * lang_encoder.gated_cross_attn_layers.{i}.X   (alias)        →  gated_cross_attn_layers.{i}.X
 * ```
 * Every other key (vision encoder, perceiver, the LM's own layers) is left out. The tensors
 * are the same objects (not copied).
 *
 * @example
 * ```ts
 * const { tensors } = readSafetensors(bytes);  // e.g. lang_encoder.model.decoder.layers.1.gated_cross_attn_layer.attn_gate
 * flamingo.loadStateDict(flamingoLMStateDictFromOpenFlamingo(tensors)); // gated_cross_attn_layers.1.attn_gate, …
 * ```
 */
export function flamingoLMStateDictFromOpenFlamingo(checkpoint: StateDict): StateDict {
  const out: StateDict = {};
  for (const [key, tensor] of Object.entries(checkpoint)) {
    const m = CANONICAL.exec(key) ?? ALIAS.exec(key);
    if (!m) continue;
    const name = `gated_cross_attn_layers.${m[1]}.${m[2]}`;
    if (!(name in out)) out[name] = tensor;
  }
  return out;
}
