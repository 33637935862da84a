/**
 * Shared TensorFlow.js building blocks of the `@vlm` bridges: modules whose weights carry
 * PyTorch state-dict names, attention, norms, feed-forward blocks, masks, safetensors,
 * freezing, a tfjs-layers adapter and backend selection, the decoder-LM interface, and the
 * LM-side pieces every bridge feeding a language model needs (`buildLmInputs`, `causalLmLoss`,
 * `crossEntropy` with `IGNORE_INDEX`, the LLaVA-style `MlpProjector`).
 *
 * @packageDocumentation
 */
export * from './module';
export * from './shape-checks';
export * from './initializers';
export * from './matmul';
export * from './linear';
export * from './layer-norm';
export * from './gelu';
export * from './sequential';
export * from './feed-forward';
export * from './embedding';
export * from './masks';
export * from './attention';
export * from './multi-head-attention';
export * from './cross-attention';
export * from './freeze';
export * from './apply-gradients';
export * from './backend';
export * from './backend-memory';
export { installFastWasmKernels, setFastMatMulBackend } from './wasm-kernels';
export * from './module-layer';
export * from './safetensors';
export * from './seeded-random';
export * from './pytorch-kwargs';
export * from './decoder';
export * from './readback-checks';
export * from './micro-batch';
export * from './cross-entropy';
export * from './causal-lm-loss';
export * from './lm-inputs';
export * from './mlp-projector';
