/**
 * Flamingo's gated cross-attention for TensorFlow.js, with PyTorch state-dict names:
 * {@link GatedCrossAttention} (the design's tanh-gated block), {@link GatedCrossAttentionBlock}
 * (Flamingo's, masked by media locations), media-location helpers, and {@link FlamingoLM},
 * which inserts gated blocks into a frozen decoder LM (any `DecoderLM` of `@vlm/core`).
 * Importing the package registers the block classes with `registerModuleClass`.
 *
 * @packageDocumentation
 */
export * from './media-locations';
export * from './gated-cross-attention';
export * from './masked-cross-attention';
export * from './gated-cross-attention-block';
export * from './config';
export * from './flamingo-lm';
export * from './openflamingo-keys';
