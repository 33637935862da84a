import * as tf from '@tensorflow/tfjs-core';
import type { ImageLayout, VisionEncoder } from './vision-encoder';
import type { ImagePreprocessing } from './preprocess';

/** Per-channel statistics of vision tokens (what {@link StandardizedVisionEncoder} subtracts and divides by). */
export interface VisionTokenStatistics {
  /** Mean of each channel, `[width]`. */
  mean: tf.Tensor1D;
  /** Standard deviation of each channel, `[width]`, floored at `minStd`. */
  std: tf.Tensor1D;
}

/**
 * Per-channel mean and standard deviation of vision tokens `[N, tokens, width]` over every image
 * and token (a frozen encoder's feature statistics, as a `StandardScaler` fitted on the training
 * images). A channel whose deviation is below `minStd` (a ReLU channel that never fires) gets
 * `minStd`, so it stays near 0 instead of being blown up. New tensors, owned by the caller.
 *
 * @example
 * ```ts
 * const stats = visionTokenStatistics(encoder.encode(trainingPixels)); // mean, std: [width]
 * const standardized = new StandardizedVisionEncoder(encoder, stats);
 * ```
 */
export function visionTokenStatistics(tokens: tf.Tensor, options: { minStd?: number } = {}): VisionTokenStatistics {
  if (tokens.rank !== 3) throw new Error(`visionTokenStatistics: expected tokens [images, tokens, width], got [${tokens.shape}]`);
  if (tokens.dtype !== 'float32') throw new Error(`visionTokenStatistics: expected float32 tokens, got ${tokens.dtype}`);
  if (tokens.shape[0] === 0 || tokens.shape[1] === 0) throw new Error(`visionTokenStatistics: no tokens to measure (shape [${tokens.shape}])`);
  const minStd = options.minStd ?? 1e-2;
  if (!(minStd > 0)) throw new Error(`visionTokenStatistics: minStd must be > 0, got ${minStd}`);
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(tokens, [0, 1]);
    return { mean: mean as tf.Tensor1D, std: tf.maximum(tf.sqrt(variance), minStd) as tf.Tensor1D };
  });
}

/**
 * A frozen vision encoder followed by a frozen per-channel standardization of its tokens,
 * `(tokens − mean) / std`, with statistics of the training images ({@link visionTokenStatistics}).
 * ReLU feature maps of a CNN (nsfwjs' MobileNetV2) have a large shared component across images,
 * so the differences a bridge must read — the colour of a small object — are a small part of
 * each token; standardizing makes them the main part (the demo's bridges do not learn without it).
 * Owns copies of the statistics; the wrapped encoder is disposed with it unless `ownsEncoder` is false.
 *
 * @example
 * ```ts
 * const raw = await loadNsfwjsMobileNetV2Encoder({ layer: 'block_6_expand_relu', pool: 4 });
 * const enc = new StandardizedVisionEncoder(raw, visionTokenStatistics(raw.encode(pixels)));
 * enc.encode(pixels).shape; // [N, 49, 192], each channel ~ mean 0, std 1 over the training images
 * ```
 */
export class StandardizedVisionEncoder implements VisionEncoder {
  readonly name: string;
  readonly inputLayout: ImageLayout;
  readonly preprocessing: ImagePreprocessing;
  readonly tokenWidth: number;
  readonly numTokens: number;
  /** Per-channel mean `[width]` (owned). */
  readonly mean: tf.Tensor1D;
  /** Per-channel standard deviation `[width]` (owned). */
  readonly std: tf.Tensor1D;

  constructor(
    /** The frozen encoder whose tokens are standardized. */
    readonly encoder: VisionEncoder,
    statistics: VisionTokenStatistics,
    private readonly options: { ownsEncoder?: boolean } = {},
  ) {
    const w = encoder.tokenWidth;
    for (const [k, t] of Object.entries(statistics) as Array<[string, tf.Tensor]>) {
      if (t.rank !== 1 || t.shape[0] !== w) throw new Error(`StandardizedVisionEncoder: ${k}: expected [${w}] (the encoder's token width), got [${t.shape}]`);
      if (t.dtype !== 'float32') throw new Error(`StandardizedVisionEncoder: ${k}: expected float32, got ${t.dtype}`);
    }
    const std = statistics.std.dataSync();
    const bad = std.findIndex((v) => !(v > 0) || !Number.isFinite(v));
    if (bad >= 0) throw new Error(`StandardizedVisionEncoder: std must be finite and > 0, channel ${bad} is ${std[bad]}`);
    this.mean = tf.keep(tf.clone(statistics.mean));
    this.std = tf.keep(tf.clone(statistics.std));
    this.name = `${encoder.name}, standardized`;
    this.inputLayout = encoder.inputLayout;
    this.preprocessing = encoder.preprocessing;
    this.tokenWidth = w;
    this.numTokens = encoder.numTokens;
  }

  /** Pixels → the wrapped encoder's tokens, standardized per channel: `[batch, tokens, width]`. */
  encode(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.standardize(this.encoder.encode(pixels)));
  }

  /** Standardizes tokens the wrapped encoder already produced (e.g. cached features): `[…, width]`. */
  standardize<T extends tf.Tensor>(tokens: T): T {
    if (tokens.shape[tokens.rank - 1] !== this.tokenWidth) {
      throw new Error(`StandardizedVisionEncoder.standardize: expected tokens of width ${this.tokenWidth}, got [${tokens.shape}]`);
    }
    return tf.tidy(() => tf.div(tf.sub(tokens, this.mean), this.std)) as T;
  }

  /** Releases the statistics and (unless `ownsEncoder: false`) the wrapped encoder. */
  dispose(): void {
    tf.dispose([this.mean, this.std]);
    if (this.options.ownsEncoder ?? true) this.encoder.dispose();
  }
}
