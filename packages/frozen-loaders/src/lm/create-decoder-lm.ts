import * as tf from '@tensorflow/tfjs-core';
import { isInitSkipped, normal } from '@vlm/core';
import type { CausalLM } from './causal-lm';
import { configObject } from './config-reader';
import { parseDecoderLMConfig, type DecoderLMConfig } from './decoder-config';
import { GPT2LMHeadModel } from './gpt2';
import { LlamaForCausalLM } from './llama';
import { OPTForCausalLM } from './opt';

/** Options of {@link createDecoderLM}. */
export interface CreateDecoderLMOptions {
  /**
   * Standard deviation of the normal initialisation of every weight matrix and embedding table.
   * Default: the config's `initializer_range` (GPT-2, LLaMA) or `init_std` (OPT), else `0.02`.
   */
  initializerRange?: number;
}

// LayerNorm / RMSNorm parameters by their Hugging Face names (ln_1, ln_f, *_layer_norm, *_layernorm, norm).
const NORM = /(^|\.)(ln_[^.]*|[^.]*layer_?norm|norm)\.(weight|bias)$/;
// GPT-2's residual projections, scaled by 1/sqrt(2·n_layer) at init.
const GPT2_RESIDUAL = /\.c_proj\.weight$/;

/**
 * Builds the decoder LM a config describes, with NEW weights, **trainable** (not frozen): for
 * pretraining a small LM, for tests, or as the shell that the loaders fill with checkpoint
 * weights. Freeze it with core's `freeze(lm)` before training a bridge on it (`FlamingoLM`
 * freezes the LM it wraps by default). The config is a parsed {@link DecoderLMConfig} or a raw
 * `config.json` (object, text or bytes).
 *
 * The weights are initialised as Hugging Face's `GPT2PreTrainedModel._init_weights` does (the
 * same scheme OPT and LLaMA use): every weight matrix and embedding table `N(0, σ²)` with
 * `σ = initializer_range` (0.02), biases 0, norm weights 1 and norm biases 0, and GPT-2's
 * residual projections (`c_proj`) `N(0, σ²/(2·n_layer))`. So a fresh LM starts near the
 * uniform prediction (loss ≈ `log(vocab_size)`), not from N(0, 1) embeddings. Core's
 * `manualSeed` makes the weights repeatable.
 *
 * @example
 * ```ts
 * manualSeed(0);
 * const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: 97, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });
 * lm.hfClass; // 'GPT2LMHeadModel'
 * freeze(lm); // before training a bridge against it
 * ```
 */
export function createDecoderLM(config: DecoderLMConfig | unknown, options: CreateDecoderLMOptions = {}): CausalLM {
  const cfg = parseDecoderLMConfig(config);
  let model: CausalLM;
  switch (cfg.modelType) {
    case 'gpt2':
      model = new GPT2LMHeadModel(cfg);
      break;
    case 'opt':
      model = new OPTForCausalLM(cfg);
      break;
    case 'llama':
      model = new LlamaForCausalLM(cfg);
      break;
  }
  const std = options.initializerRange ?? configuredRange(config) ?? 0.02;
  if (!(std >= 0)) throw new Error(`createDecoderLM: initializerRange must be a non-negative number, got ${std}`);
  // Under skipInit (the loaders) the weights come from the checkpoint.
  if (!isInitSkipped()) initAsGpt2(model, std, cfg.modelType === 'gpt2' ? model.numLayers : 0);
  return model;
}

function configuredRange(config: unknown): number | undefined {
  let json: Record<string, unknown>;
  try {
    json = configObject(config);
  } catch {
    return undefined; // an already parsed DecoderLMConfig
  }
  const v = json.initializer_range ?? json.init_std;
  return typeof v === 'number' ? v : undefined;
}

function initAsGpt2(model: CausalLM, std: number, gpt2Layers: number): void {
  const seen = new Set<tf.Variable>();
  for (const [name, v] of model.namedParameters()) {
    if (seen.has(v)) continue; // tied tables are one variable
    seen.add(v);
    const fresh = tf.tidy(() => {
      if (NORM.test(name)) return name.endsWith('.weight') ? tf.onesLike(v) : tf.zerosLike(v);
      if (name.endsWith('.bias')) return tf.zerosLike(v);
      const s = gpt2Layers > 0 && GPT2_RESIDUAL.test(name) ? std / Math.sqrt(2 * gpt2Layers) : std;
      return normal(v.shape, s);
    });
    v.assign(fresh);
    fresh.dispose();
  }
}
