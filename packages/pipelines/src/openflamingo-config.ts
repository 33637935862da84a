import type { PyTorchKwargs } from '@vlm/core';

/**
 * What loads a whole OpenFlamingo model with {@link Flamingo.fromOpenFlamingo}: the pieces
 * `open_flamingo.create_model_and_transforms` is built from, in their own spelling.
 *
 * A folder for `loadOpenFlamingo` (`@vlm/pipelines/node`) holds this as `config.json`, the
 * whole `Flamingo.state_dict()` as `model.safetensors`, and optionally `tokenizer.json`.
 */
export interface OpenFlamingoConfig {
  /** open_clip's model config (`embed_dim`, `vision_cfg`, `quick_gelu`, …) of the vision encoder. */
  open_clip_config: Record<string, unknown>;
  /** The language model's Hugging Face `config.json` (OPT, GPT-2 or LLaMA), after `resize_token_embeddings`. */
  text_config: Record<string, unknown>;
  /** `PerceiverResampler(**kwargs)`: `dim` (= vision width), `depth`, `heads`, `dim_head`, `num_latents`, `ff_mult`, … */
  perceiver_kwargs: PyTorchKwargs;
  /** `GatedCrossAttentionBlock(**kwargs)`: `dim` (= LM width), `dim_visual`, `heads`, `dim_head`, `ff_mult`, `only_attend_immediate_media`. */
  xattn_kwargs: PyTorchKwargs;
  /** A block before decoder layer `i` iff `(i + 1) % n == 0`. */
  cross_attn_every_n_layers: number;
  /** Id of `<image>`. */
  media_token_id: number;
  /** Id of `<|endofchunk|>`. */
  eoc_token_id: number;
}

/**
 * Checks an {@link OpenFlamingoConfig} object; an Error names every missing or mistyped field.
 *
 * @example
 * ```ts
 * const config = parseOpenFlamingoConfig(JSON.parse(readFileSync('config.json', 'utf8')));
 * config.cross_attn_every_n_layers; // 4
 * ```
 */
export function parseOpenFlamingoConfig(config: unknown): OpenFlamingoConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error('OpenFlamingo config: expected a JSON object');
  const c = config as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of ['open_clip_config', 'text_config', 'perceiver_kwargs', 'xattn_kwargs']) {
    if (typeof c[key] !== 'object' || c[key] === null) problems.push(`${key} (an object)`);
  }
  for (const key of ['cross_attn_every_n_layers', 'media_token_id', 'eoc_token_id']) {
    if (!Number.isInteger(c[key])) problems.push(`${key} (an integer)`);
  }
  if (problems.length) throw new Error(`OpenFlamingo config: missing or invalid field(s): ${problems.join(', ')}`);
  return c as unknown as OpenFlamingoConfig;
}
