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

const LM_PREFIX = 'lang_encoder.';
const LM_BLOCK = /^(?:.*\.)?\d+\.gated_cross_attn_layer\./;
const LM_ALIAS = /^(?:gated_cross_attn_layers|old_decoder_blocks)\./;
const LM_WRAPPED_LAYER = /^(.*\.\d+)\.decoder_layer\.(.+)$/;

/**
 * The frozen language model's own weights out of an OpenFlamingo state dict, under the
 * Hugging Face names of the LM that `lang_encoder` wraps, ready for a decoder-LM loader (e.g.
 * `loadDecoderLMFromStateDict` of `@vlm/frozen-loaders`). OpenFlamingo wraps every decoder
 * layer in a `FlamingoLayer`, which moves the original layer's weights one level down:
 *
 * ```text
 * lang_encoder.<decoder layers>.{i}.decoder_layer.X        →  <decoder layers>.{i}.X
 * lang_encoder.X  (embeddings, final norm, lm_head, …)     →  X
 * lang_encoder.<decoder layers>.{i}.gated_cross_attn_layer.*,
 * lang_encoder.gated_cross_attn_layers.*, lang_encoder.old_decoder_blocks.*  (aliases)   →  left out
 * ```
 * Keys outside `lang_encoder.` (vision encoder, perceiver) are left out too; the gated blocks
 * are {@link flamingoLMStateDictFromOpenFlamingo}'s. The tensors are the same objects (not
 * copied). A released OpenFlamingo `checkpoint.pt` holds only the trainable LM keys (the token
 * and position embeddings and `lm_head.weight`), so from one this returns just those.
 *
 * @example
 * ```ts
 * const { tensors } = readSafetensors(bytes); // a whole Flamingo.state_dict() with an OPT lang_encoder
 * const lmWeights = decoderLMStateDictFromOpenFlamingo(tensors);
 * // lang_encoder.model.decoder.layers.0.decoder_layer.fc1.weight → model.decoder.layers.0.fc1.weight
 * const lm = loadDecoderLMFromStateDict(optConfig, lmWeights); // @vlm/frozen-loaders
 * ```
 */
export function decoderLMStateDictFromOpenFlamingo(checkpoint: StateDict): StateDict {
  const out: StateDict = {};
  for (const [key, tensor] of Object.entries(checkpoint)) {
    if (!key.startsWith(LM_PREFIX)) continue;
    const rest = key.slice(LM_PREFIX.length);
    if (LM_ALIAS.test(rest) || LM_BLOCK.test(rest)) continue;
    const m = LM_WRAPPED_LAYER.exec(rest);
    out[m ? `${m[1]}.${m[2]}` : rest] = tensor;
  }
  return out;
}
