import { ConfigReader } from './config-reader';
import { readActivation, type ActivationName } from './activation';

/** A GPT-2 `config.json` (model_type `gpt2`), camelCased, with defaults filled in. */
export interface GPT2Config {
  /** `model_type`: always `gpt2`. */
  modelType: 'gpt2';
  /** `vocab_size`: number of token ids (rows of `wte`). */
  vocabSize: number;
  /** `n_positions` (else `n_ctx`): rows of the learned position table `wpe`, the longest sequence. */
  nPositions: number;
  /** `n_embd`: width of the residual stream. */
  nEmbd: number;
  /** `n_layer`: number of transformer blocks. */
  nLayer: number;
  /** `n_head`: number of attention heads; divides `nEmbd`. */
  nHead: number;
  /** MLP width (`n_inner`, `null` → `4·n_embd`). */
  nInner: number;
  /** `activation_function`: MLP activation. Default: `gelu_new`. */
  activationFunction: ActivationName;
  /** `layer_norm_epsilon`: epsilon of every LayerNorm. Default: `1e-5`. */
  layerNormEpsilon: number;
  /** `scale_attn_weights`: divide attention logits by `sqrt(headDim)`. Default: `true`. */
  scaleAttnWeights: boolean;
  /** `scale_attn_by_inverse_layer_idx`: also divide attention logits by `layerIdx + 1`. Default: `false`. */
  scaleAttnByInverseLayerIdx: boolean;
  /** `tie_word_embeddings`: the LM head reuses `wte` (no `lm_head.weight`). Default: `true`. */
  tieWordEmbeddings: boolean;
  /** `bos_token_id` (`undefined` when absent or `null`). */
  bosTokenId?: number;
  /** `eos_token_id` as a list (empty when absent). */
  eosTokenIds: number[];
  /** `pad_token_id` (`undefined` when absent or `null`). */
  padTokenId?: number;
}

/**
 * Parses a Hugging Face GPT-2 config. Unsupported settings (`add_cross_attention: true`, an
 * unknown `activation_function`, …) throw an `Error` naming the field.
 *
 * @example
 * ```ts
 * const cfg = parseGPT2Config({ model_type: 'gpt2', vocab_size: 97, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });
 * cfg.nInner; // 128
 * ```
 */
export function parseGPT2Config(json: Record<string, unknown>): GPT2Config {
  const r = new ConfigReader(json, 'gpt2');
  r.onlyAllow('model_type', ['gpt2'], 'expected "gpt2"');
  r.onlyAllow('add_cross_attention', [false], 'cross-attention layers inside GPT-2 are not implemented');
  const nEmbd = r.int('n_embd');
  const nHead = r.int('n_head');
  if (nEmbd % nHead !== 0) r.fail('n_head', `must divide n_embd (${nEmbd}), got ${nHead}`);
  return {
    modelType: 'gpt2',
    vocabSize: r.int('vocab_size'),
    nPositions: r.int('n_positions', r.optionalInt('n_ctx')),
    nEmbd,
    nLayer: r.int('n_layer'),
    nHead,
    nInner: r.optionalInt('n_inner', 1) ?? 4 * nEmbd,
    activationFunction: readActivation(r, 'activation_function', 'gelu_new'),
    layerNormEpsilon: r.num('layer_norm_epsilon', 1e-5),
    scaleAttnWeights: r.bool('scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: r.bool('scale_attn_by_inverse_layer_idx', false),
    // reorder_and_upcast_attn only changes float16 rounding: the float32 math is the same.
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    bosTokenId: r.optionalInt('bos_token_id'),
    eosTokenIds: r.tokenIds('eos_token_id'),
    padTokenId: r.optionalInt('pad_token_id'),
  };
}
