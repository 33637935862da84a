import type * as tf from '@tensorflow/tfjs-core';
import type { ImagePreprocessing } from './preprocess';

/** Memory layout of an image batch: `NCHW` (PyTorch / HF `pixel_values`) or `NHWC` (TF.js). */
export type ImageLayout = 'NCHW' | 'NHWC';

/**
 * What a bridge needs from a frozen vision encoder: images in, tokens `[batch, tokens, width]`
 * out. Every encoder of this package implements it, frozen on load.
 *
 * @example
 * ```ts
 * const encoder: VisionEncoder = await loadNsfwjsMobileNetV2Encoder();
 * const pixels = preprocessImages([image], encoder.preprocessing); // [1, 224, 224, 3]
 * encoder.encode(pixels).shape; // [1, 49, 576]
 * ```
 */
export interface VisionEncoder {
  /** A short description for messages, e.g. `'CLIP ViT (HF) layer -2, no CLS'`. */
  readonly name: string;
  /** The layout {@link VisionEncoder.encode} expects. */
  readonly inputLayout: ImageLayout;
  /** How to turn images into {@link VisionEncoder.encode}'s input (size, crop, mean/std, layout). */
  readonly preprocessing: ImagePreprocessing;
  /** Width of each output token. */
  readonly tokenWidth: number;
  /** Tokens per image for the preprocessing's image size. */
  readonly numTokens: number;
  /** Pixels in {@link VisionEncoder.inputLayout} (already normalised) → tokens `[batch, tokens, width]`. */
  encode(pixels: tf.Tensor): tf.Tensor3D;
  /** Releases the encoder's weights. */
  dispose(): void;
}

/** Which hidden state a ViT encoder returns as tokens, and whether with its CLS token. */
export interface VitTokenOptions {
  /**
   * Index into the `hidden_states` tuple (Hugging Face's `output_hidden_states` numbering:
   * 0 = embeddings, `i` = output of layer `i-1`); negative counts from the end, so `-1` is the
   * last layer and `-2` the penultimate one (LLaVA's `vision_feature_layer`). Default: `-1`.
   */
  layer?: number;
  /** Keep the CLS token (first). Default: `false` (patch tokens only, as OpenFlamingo and LLaVA use). */
  includeCls?: boolean;
}

/**
 * Resolves a possibly negative hidden-state index against `numLayers + 1` entries (throws when
 * out of range).
 *
 * @example
 * ```ts
 * resolveLayerIndex(-2, 24, 'CLIP'); // 23: the penultimate layer's output of a 24-layer tower
 * ```
 */
export function resolveLayerIndex(layer: number, numLayers: number, what: string): number {
  const i = layer < 0 ? numLayers + 1 + layer : layer;
  if (!Number.isInteger(layer) || i < 0 || i > numLayers) {
    throw new Error(`${what}: layer ${layer} is out of range: the tower has ${numLayers} layers, so hidden states 0..${numLayers} (or -${numLayers + 1}..-1)`);
  }
  return i;
}
