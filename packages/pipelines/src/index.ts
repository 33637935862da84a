/**
 * Whole vision-language models assembled from the `@vlm` bridges, loaders and a frozen LM:
 * {@link Flamingo} (vision encoder + Perceiver Resampler + gated cross-attention LM),
 * {@link Blip2} (vision encoder + Q-Former + language projection → soft visual prompt) and the
 * LLaVA-style {@link Llava} baseline (MLP projector). Each one generates from images and a
 * prompt, loads upstream checkpoints (OpenFlamingo, Hugging Face `Blip2ForConditionalGeneration`)
 * and saves / loads its trained bridge under PyTorch names. Folders on disk: `@vlm/pipelines/node`.
 *
 * @packageDocumentation
 */
export * from './bridge-checkpoint';
export * from './prompts';
export * from './openflamingo-config';
export * from './flamingo';
export * from './small-flamingo-bridge';
export * from './soft-prompt-model';
export * from './blip2';
export * from './llava';
export * from './qformer-probe';
