/**
 * Perceiver Resamplers for TensorFlow.js: a variable number of vision tokens in, a fixed number
 * of visual tokens out. Two variants, both with PyTorch state-dict names:
 * {@link PerceiverResampler} (the design's, `torch.nn.MultiheadAttention` weights, padded
 * variable-length batches) and {@link FlamingoPerceiverResampler} (Flamingo / OpenFlamingo).
 * Importing the package registers both with `registerModuleClass`, so models that contain
 * them load with `tf.loadLayersModel`.
 *
 * @packageDocumentation
 */
export * from './perceiver-resampler-layer';
export * from './perceiver-resampler';
export * from './padding';
export * from './perceiver-attention';
export * from './flamingo-perceiver-resampler';
export * from './config';
