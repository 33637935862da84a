/**
 * The BLIP-2 bridge on TensorFlow.js: the Q-Former (Hugging Face `Blip2QFormerModel`
 * semantics and weight names), its stage-1 objectives (ITC, ITM, ITG as in LAVIS), the
 * Hugging Face BLIP-2 checkpoint import/export. The LM-side pieces every bridge shares (the
 * stage-2/3 input builder `buildLmInputs`, `causalLmLoss`, `crossEntropy`, `IGNORE_INDEX`,
 * the LLaVA-style `MlpProjector`) live in `@vlm/core` and are re-exported here unchanged.
 *
 * Importing this package registers {@link QFormer} with core's `registerModuleClass`, so saved
 * tfjs-layers models that contain it load.
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
export * from './itc';
export * from './itm';
export * from './lm-head';
export * from './itg';
export * from './stage1';
// The LM-side pieces every bridge uses live in @vlm/core; re-exported here for compatibility.
export {
  IGNORE_INDEX,
  crossEntropy,
  causalLmLoss,
  buildLmInputs,
  addImagePlaceholders,
  MlpProjector,
  type CrossEntropyOptions,
  type CausalLmLossOptions,
  type LmInputLayout,
  type BuildLmInputsArgs,
  type LmInputs,
  type AddImagePlaceholdersArgs,
  type MlpProjectorArgs,
} from '@vlm/core';
