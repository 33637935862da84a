import { ConfigReader } from './config-reader';
import { readActivation, type ActivationName } from './activation';

/** A LLaMA-family `config.json` (model_type `llama`), camelCased, with defaults filled in. */
export interface LlamaConfig {
  /** `model_type`: always `llama`. */
  modelType: 'llama';
  /** `vocab_size`: number of token ids (rows of `embed_tokens`). */
  vocabSize: number;
  /** `hidden_size`: width of the residual stream. */
  hiddenSize: number;
  /** `intermediate_size`: MLP width (output of `gate_proj` and `up_proj`). */
  intermediateSize: number;
  /** `num_hidden_layers`: number of decoder layers. */
  numHiddenLayers: number;
  /** `num_attention_heads`: number of query heads. */
  numAttentionHeads: number;
  /** Grouped-query attention when fewer than `numAttentionHeads` (default: equal). */
  numKeyValueHeads: number;
  /** Default: `hiddenSize / numAttentionHeads`. */
  headDim: number;
  /** `max_position_embeddings`: context length the model was trained for (a forward over more positions throws unless `LlamaForCausalLM.allowLongerSequences` is set). Default: `2048`. */
  maxPositionEmbeddings: number;
  /** `rms_norm_eps`: epsilon of every RMSNorm. Default: `1e-6`. */
  rmsNormEps: number;
  /** `rope_theta` (or the `rope_theta` inside `rope_scaling` / `rope_parameters`): RoPE base θ. Default: `10000`. */
  ropeTheta: number;
  /** `hidden_act`: activation of the gated MLP. Default: `silu`. */
  hiddenAct: ActivationName;
  /** `attention_bias`: biases on `q_proj`, `k_proj`, `v_proj` and `o_proj`. Default: `false`. */
  attentionBias: boolean;
  /** `mlp_bias`: biases on `gate_proj`, `up_proj` and `down_proj`. Default: `false`. */
  mlpBias: boolean;
  /** `tie_word_embeddings`: the LM head reuses `embed_tokens` (no `lm_head.weight`). Default: `false`. */
  tieWordEmbeddings: boolean;
  /** `bos_token_id` (`undefined` when absent or `null`). */
  bosTokenId?: number;
  /** `eos_token_id` as a list (empty when absent). */
  eosTokenIds: number[];
  /** `pad_token_id` (`undefined` when absent or `null`). */
  padTokenId?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a Hugging Face LLaMA config. Only the default RoPE is implemented: a `rope_scaling`
 * (or transformers v5 `rope_parameters`) other than `{rope_type: "default"}` throws an `Error`
 * naming the field, as do other unsupported settings.
 *
 * @example
 * ```ts
 * const cfg = parseLlamaConfig({ model_type: 'llama', vocab_size: 101, hidden_size: 48, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
 * cfg.headDim; // 12
 * ```
 */
export function parseLlamaConfig(json: Record<string, unknown>): LlamaConfig {
  const r = new ConfigReader(json, 'llama');
  r.onlyAllow('model_type', ['llama'], 'expected "llama"');
  let ropeTheta = r.num('rope_theta', 10000);
  for (const field of ['rope_scaling', 'rope_parameters']) {
    if (!r.has(field)) continue;
    const raw = json[field];
    if (!isObject(raw)) r.fail(field, `must be an object or null, got ${JSON.stringify(raw)}`);
    const v = raw as Record<string, unknown>;
    const type = v.rope_type ?? v.type ?? 'default';
    if (type !== 'default') r.fail(field, `has unsupported rope type ${JSON.stringify(type)} (only "default" RoPE is implemented)`);
    if (v.rope_theta !== undefined) ropeTheta = new ConfigReader(v, `llama ${field}`).num('rope_theta');
  }
  const hiddenSize = r.int('hidden_size');
  const numAttentionHeads = r.int('num_attention_heads');
  const numKeyValueHeads = r.int('num_key_value_heads', numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    r.fail('num_key_value_heads', `must divide num_attention_heads (${numAttentionHeads}), got ${numKeyValueHeads}`);
  }
  const defaultHeadDim = hiddenSize / numAttentionHeads;
  const headDim = r.int('head_dim', Number.isInteger(defaultHeadDim) ? defaultHeadDim : undefined);
  if (headDim % 2 !== 0) r.fail('head_dim', `must be even for rotary embeddings, got ${headDim}`);
  return {
    modelType: 'llama',
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    intermediateSize: r.int('intermediate_size'),
    numHiddenLayers: r.int('num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    maxPositionEmbeddings: r.int('max_position_embeddings', 2048),
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta,
    hiddenAct: readActivation(r, 'hidden_act', 'silu'),
    attentionBias: r.bool('attention_bias', false),
    mlpBias: r.bool('mlp_bias', false),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    bosTokenId: r.optionalInt('bos_token_id'),
    eosTokenIds: r.tokenIds('eos_token_id'),
    padTokenId: r.optionalInt('pad_token_id'),
  };
}
