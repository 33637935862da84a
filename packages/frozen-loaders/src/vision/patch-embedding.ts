import * as tf from '@tensorflow/tfjs-core';
import { Module, assertDtype, assertShape } from '@vlm/core';

/** Constructor arguments of {@link PatchEmbedding}. */
export interface PatchEmbeddingArgs {
  /** Input channels `C` (3 for RGB). */
  inChannels: number;
  /** Token width `D`. */
  embedDim: number;
  /** Patch side `P` (kernel size and stride). */
  patchSize: number;
  /** Learn a bias (BLIP-2 has one; CLIP and open_clip do not). Default: `false`. */
  bias?: boolean;
}

/**
 * A ViT patch embedding: `torch.nn.Conv2d(C, D, kernel_size=P, stride=P)`, state-dict keys
 * `weight` `[D, C, P, P]` (PyTorch layout) and optionally `bias` `[D]`. The forward runs
 * `tf.conv2d` on NHWC input with the weight transposed to `[P, P, C, D]`, and flattens the
 * `g×g` grid row-major (token index = row·g + col), as `flatten(2).transpose(1, 2)` does.
 *
 * @example
 * ```ts
 * const pe = new PatchEmbedding({ inChannels: 3, embedDim: 32, patchSize: 8 });
 * pe.forward(tf.zeros([2, 32, 32, 3])).shape; // [2, 16, 32]
 * ```
 */
export class PatchEmbedding extends Module {
  /** Input channels `C` (PyTorch `in_channels`). */
  readonly inChannels: number;
  /** Output token width `D` (PyTorch `out_channels`). */
  readonly embedDim: number;
  /** Patch side `P`: the convolution's kernel size and stride. */
  readonly patchSize: number;
  /** Whether the convolution has a `bias` `[D]` parameter (`args.bias`, default `false`). */
  readonly hasBias: boolean;

  constructor(args: PatchEmbeddingArgs) {
    super();
    this.inChannels = args.inChannels;
    this.embedDim = args.embedDim;
    this.patchSize = args.patchSize;
    this.hasBias = args.bias ?? false;
    const fanIn = args.inChannels * args.patchSize * args.patchSize;
    const bound = 1 / Math.sqrt(fanIn);
    const shape = [args.embedDim, args.inChannels, args.patchSize, args.patchSize];
    this.registerParameter('weight', { shape, init: () => tf.randomUniform(shape, -bound, bound) });
    if (this.hasBias) this.registerParameter('bias', { shape: [args.embedDim], init: () => tf.randomUniform([args.embedDim], -bound, bound) });
  }

  /** `[b, H, W, C]` (NHWC) → `[b, (H/P)·(W/P), D]`. H and W must be multiples of P. */
  forward(x: tf.Tensor): tf.Tensor3D {
    assertShape(x, [null, null, null, this.inChannels], 'PatchEmbedding input (NHWC)', ['batch', 'height', 'width', 'channels']);
    const [b, h, w] = x.shape as [number, number, number, number];
    const p = this.patchSize;
    if (h % p !== 0 || w % p !== 0) throw new Error(`PatchEmbedding: image ${h}×${w} is not a multiple of the patch size ${p}`);
    return tf.tidy(() => {
      const filter = tf.transpose(this.parameter('weight'), [2, 3, 1, 0]) as tf.Tensor4D; // [P, P, C, D]
      let y: tf.Tensor = tf.conv2d(x as tf.Tensor4D, filter, p, 'valid');
      if (this.hasBias) y = tf.add(y, this.parameter('bias'));
      return tf.reshape(y, [b, (h / p) * (w / p), this.embedDim]) as tf.Tensor3D;
    });
  }
}

/**
 * NCHW (PyTorch / Hugging Face `pixel_values`) → NHWC (TF.js convolutions).
 *
 * @example
 * ```ts
 * nchwToNhwc(tf.zeros([2, 3, 224, 224])).shape; // [2, 224, 224, 3]
 * ```
 */
export function nchwToNhwc(x: tf.Tensor): tf.Tensor4D {
  assertShape(x, [null, null, null, null], 'pixel_values (NCHW)', ['batch', 'channels', 'height', 'width']);
  assertDtype(x, ['float32'], 'pixel_values (NCHW)');
  return tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
}
