/**
 * The BLIP-2 bridge on TensorFlow.js: the Q-Former (Hugging Face `Blip2QFormerModel`
 * semantics and weight names), its stage-1 objectives (ITC, ITM, ITG as in LAVIS), the
 * stage-2/3 input builder for a frozen language model (LAVIS and Hugging Face layouts),
 * Hugging Face BLIP-2 checkpoint import/export, and an LLaVA-style MLP projector.
 *
 * Importing this package registers {@link QFormer} and {@link MlpProjector} with core's
 * `registerModuleClass`, so saved tfjs-layers models that contain them load.
 *
 * @packageDocumentation
 */
export * from './config';
export * from './masks';
export * from './attention';
export * from './feed-forward';
export * from './layer';
export * from './text-embeddings';
export * from './qformer';
export * from './hf';
export * from './cross-entropy';
export * from './itc';
export * from './itm';
export * from './lm-head';
export * from './itg';
export * from './stage1';
export * from './lm-inputs';
export * from './mlp-projector';
