import { configObject } from './config-reader';
import { parseGPT2Config, type GPT2Config } from './gpt2-config';
import { parseLlamaConfig, type LlamaConfig } from './llama-config';
import { parseOPTConfig, type OPTConfig } from './opt-config';

/** A parsed decoder LM config: GPT-2, OPT or LLaMA (discriminated by `modelType`). */
export type DecoderLMConfig = GPT2Config | OPTConfig | LlamaConfig;

/** The `model_type` values {@link parseDecoderLMConfig} accepts. */
export const SUPPORTED_DECODER_MODEL_TYPES = ['gpt2', 'opt', 'llama'] as const;

const BY_ARCHITECTURE: Record<string, (typeof SUPPORTED_DECODER_MODEL_TYPES)[number]> = {
  GPT2LMHeadModel: 'gpt2',
  GPT2Model: 'gpt2',
  OPTForCausalLM: 'opt',
  OPTModel: 'opt',
  LlamaForCausalLM: 'llama',
  LlamaModel: 'llama',
};

/**
 * Parses a Hugging Face `config.json` (object, JSON text or bytes) of a supported decoder LM,
 * dispatching on `model_type` (or, without it, on `architectures[0]`). An unknown model type or
 * an unsupported setting throws an `Error` naming the field.
 *
 * @example
 * ```ts
 * const cfg = parseDecoderLMConfig(readFileSync('config.json', 'utf8'));
 * cfg.modelType; // 'llama'
 * ```
 */
export function parseDecoderLMConfig(config: unknown): DecoderLMConfig {
  const json = configObject(config);
  if ('modelType' in json && typeof json.modelType === 'string' && !('model_type' in json)) return json as unknown as DecoderLMConfig;
  let type = json.model_type;
  if (type === undefined && Array.isArray(json.architectures)) type = BY_ARCHITECTURE[String(json.architectures[0])];
  switch (type) {
    case 'gpt2':
      return parseGPT2Config(json);
    case 'opt':
      return parseOPTConfig(json);
    case 'llama':
      return parseLlamaConfig(json);
    default:
      throw new Error(
        `decoder LM config: field 'model_type' has unsupported value ${JSON.stringify(type)} (supported: ${SUPPORTED_DECODER_MODEL_TYPES.join(', ')})`,
      );
  }
}
