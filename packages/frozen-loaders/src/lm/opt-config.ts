import { ConfigReader } from './config-reader';
import { readActivation, type ActivationName } from './activation';

/** An OPT `config.json` (model_type `opt`), camelCased, with defaults filled in. */
export interface OPTConfig {
  modelType: 'opt';
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  ffnDim: number;
  numAttentionHeads: number;
  /** Positions; the table has `maxPositionEmbeddings + 2` rows. */
  maxPositionEmbeddings: number;
  /** Token embedding width (`project_in`/`project_out` when it differs from `hiddenSize`). */
  wordEmbedProjDim: number;
  /** Pre-LN (`true`, most OPT sizes) or post-LN (opt-350m). */
  doLayerNormBefore: boolean;
  removeFinalLayerNorm: boolean;
  activationFunction: ActivationName;
  enableBias: boolean;
  layerNormElementwiseAffine: boolean;
  tieWordEmbeddings: boolean;
  bosTokenId?: number;
  eosTokenIds: number[];
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
