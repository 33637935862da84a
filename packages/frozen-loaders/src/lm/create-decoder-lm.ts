import type { CausalLM } from './causal-lm';
import { parseDecoderLMConfig, type DecoderLMConfig } from './decoder-config';
import { GPT2LMHeadModel } from './gpt2';
import { LlamaForCausalLM } from './llama';
import { OPTForCausalLM } from './opt';

/**
 * Builds the decoder LM a config describes, with random weights and trainable (not frozen):
 * for tests, or to fill with {@link loadDecoderLMFromStateDict}-style loading. The config is a
 * parsed {@link DecoderLMConfig} or a raw `config.json` (object, text or bytes).
 *
 * @example
 * ```ts
 * const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: 97, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });
 * lm.hfClass; // 'GPT2LMHeadModel'
 * ```
 */
export function createDecoderLM(config: DecoderLMConfig | unknown): CausalLM {
  const cfg = parseDecoderLMConfig(config);
  switch (cfg.modelType) {
    case 'gpt2':
      return new GPT2LMHeadModel(cfg);
    case 'opt':
      return new OPTForCausalLM(cfg);
    case 'llama':
      return new LlamaForCausalLM(cfg);
  }
}
