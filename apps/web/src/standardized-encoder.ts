// TEMPORARY until @vlm/frozen-loaders' StandardizedVisionEncoder lands on main (encoder contract).
import * as tf from '@tensorflow/tfjs-core';
import type { VisionEncoder } from '@vlm/frozen-loaders';

/** `(encoder(pixels) - mean) / std` per channel. */
export class StandardizedEncoder implements VisionEncoder {
  readonly name: string;
  readonly inputLayout: VisionEncoder['inputLayout'];
  readonly preprocessing: VisionEncoder['preprocessing'];
  readonly tokenWidth: number;
  readonly numTokens: number;
  private readonly mean: tf.Tensor1D;
  private readonly std: tf.Tensor1D;

  constructor(
    private readonly inner: VisionEncoder,
    stats: { mean: tf.Tensor1D; std: tf.Tensor1D },
  ) {
    this.name = `${inner.name}, standardized`;
    this.inputLayout = inner.inputLayout;
    this.preprocessing = inner.preprocessing;
    this.tokenWidth = inner.tokenWidth;
    this.numTokens = inner.numTokens;
    this.mean = tf.keep(tf.clone(stats.mean));
    this.std = tf.keep(tf.clone(stats.std));
  }

  encode(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => tf.div(tf.sub(this.inner.encode(pixels), this.mean), this.std) as tf.Tensor3D);
  }

  dispose(): void {
    this.inner.dispose();
    tf.dispose([this.mean, this.std]);
  }
}
