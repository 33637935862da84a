/**
 * Frozen decoder-only language models (GPT-2, OPT, LLaMA) loaded from Hugging Face
 * checkpoints, with generation and tokenizers.
 *
 * @module
 */
export * from './config-reader';
export * from './activation';
export * from './gpt2-config';
export * from './opt-config';
export * from './llama-config';
export * from './decoder-config';
export * from './rms-norm';
export * from './rotary';
export * from './conv1d';
export * from './tied-logits';
export * from './cached-attention';
export * from './causal-lm';
export * from './gpt2';
export * from './opt';
export * from './llama';
export * from './create-decoder-lm';
export * from './checkpoint-keys';
export * from './load-from-state-dict';
export * from './safetensors-shards';
export * from './load-decoder-lm';
export * from './sampling';
export * from './generate';
export * from './tokenizer';
