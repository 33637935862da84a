import { ConfigReader } from './config-reader';
import { readActivation, type ActivationName } from './activation';

/** An OPT `config.json` (model_type `opt`), camelCased, with defaults filled in. */
export interface OPTConfig {
  /** `model_type`: always `opt`. */
  modelType: 'opt';
  /** `vocab_size`: number of token ids (rows of `embed_tokens`). */
  vocabSize: number;
  /** `hidden_size`: width of the residual stream. */
  hiddenSize: number;
  /** `num_hidden_layers`: number of decoder layers. */
  numHiddenLayers: number;
  /** `ffn_dim`: MLP width (output of `fc1`). */
  ffnDim: number;
  /** `num_attention_heads`: number of attention heads; divides `hiddenSize`. */
  numAttentionHeads: number;
  /** Positions; the table has `maxPositionEmbeddings + 2` rows. */
  maxPositionEmbeddings: number;
  /** Token embedding width (`project_in`/`project_out` when it differs from `hiddenSize`). */
  wordEmbedProjDim: number;
  /** Pre-LN (`true`, most OPT sizes) or post-LN (opt-350m). */
  doLayerNormBefore: boolean;
  /** `_remove_final_layer_norm`: drop the decoder's `final_layer_norm` (only pre-LN models have one). Default: `false`. */
  removeFinalLayerNorm: boolean;
  /** `activation_function`: MLP activation. Default: `relu`. */
  activationFunction: ActivationName;
  /** `enable_bias`: biases on the attention projections, `fc1` and `fc2`. Default: `true`. */
  enableBias: boolean;
  /** `layer_norm_elementwise_affine`: LayerNorms have a learned `weight` and `bias`. Default: `true`. */
  layerNormElementwiseAffine: boolean;
  /** `tie_word_embeddings`: the LM head reuses `embed_tokens` (no `lm_head.weight`). Default: `true`. */
  tieWordEmbeddings: boolean;
  /** `bos_token_id` (`undefined` when absent or `null`). */
  bosTokenId?: number;
  /** `eos_token_id` as a list (empty when absent). */
  eosTokenIds: number[];
  /** `pad_token_id` (`undefined` when absent or `null`). */
  padTokenId?: number;
}

/**
 * Parses a Hugging Face OPT config (LayerNorm eps is PyTorch's 1e-5, as in HF). Unsupported
 * settings throw an `Error` naming the field.
 *
 * @example
 * ```ts
 * const cfg = parseOPTConfig({ model_type: 'opt', vocab_size: 101, hidden_size: 32, num_hidden_layers: 2, ffn_dim: 64, num_attention_heads: 4, max_position_embeddings: 32 });
 * cfg.wordEmbedProjDim; // 32
 * ```
 */
export function parseOPTConfig(json: Record<string, unknown>): OPTConfig {
  const r = new ConfigReader(json, 'opt');
  r.onlyAllow('model_type', ['opt'], 'expected "opt"');
  const hiddenSize = r.int('hidden_size');
  const numAttentionHeads = r.int('num_attention_heads');
  if (hiddenSize % numAttentionHeads !== 0) r.fail('num_attention_heads', `must divide hidden_size (${hiddenSize}), got ${numAttentionHeads}`);
  return {
    modelType: 'opt',
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    numHiddenLayers: r.int('num_hidden_layers'),
    ffnDim: r.int('ffn_dim'),
    numAttentionHeads,
    maxPositionEmbeddings: r.int('max_position_embeddings'),
    wordEmbedProjDim: r.optionalInt('word_embed_proj_dim', 1) ?? hiddenSize,
    doLayerNormBefore: r.bool('do_layer_norm_before', true),
    removeFinalLayerNorm: r.bool('_remove_final_layer_norm', false),
    activationFunction: readActivation(r, 'activation_function', 'relu'),
    enableBias: r.bool('enable_bias', true),
    layerNormElementwiseAffine: r.bool('layer_norm_elementwise_affine', true),
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    bosTokenId: r.optionalInt('bos_token_id'),
    eosTokenIds: r.tokenIds('eos_token_id'),
    padTokenId: r.optionalInt('pad_token_id'),
  };
}
