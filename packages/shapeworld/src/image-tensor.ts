import * as tf from '@tensorflow/tfjs-core';
import type { SceneImage } from './rasterise';

function checkImage(image: SceneImage, where: string): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || data.length !== width * height * 3) {
    throw new Error(`${where}: expected an RGB image with data.length = width·height·3, got ${width}×${height} with ${data?.length} bytes`);
  }
}

/**
 * An image's pixels as float32 RGB in `[0, 1]` (`x / 255`), `[height, width, 3]` row-major: the
 * input range of the embedded MobileNetV2 (nsfwjs divides by 255; see the package README).
 *
 * @example
 * ```ts
 * imageToFloat32(renderScene(scene)).length; // 224 * 224 * 3
 * ```
 */
export function imageToFloat32(image: SceneImage): Float32Array {
  checkImage(image, 'imageToFloat32');
  const out = new Float32Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = image.data[i]! / 255;
  return out;
}

/**
 * Images as one float32 batch `[batch, height, width, 3]` in `[0, 1]`, ready for a
 * channels-last encoder such as the embedded MobileNetV2. All images must be the same size.
 *
 * @example
 * ```ts
 * const pixels = imagesToTensor(splitScenes('train', 8).map(renderScene)); // [8, 224, 224, 3]
 * ```
 */
export function imagesToTensor(images: readonly SceneImage[]): tf.Tensor4D {
  if (images.length === 0) throw new Error('imagesToTensor: expected at least one image, got none');
  const { width, height } = images[0]!;
  const per = width * height * 3;
  const out = new Float32Array(images.length * per);
  images.forEach((im, i) => {
    checkImage(im, 'imagesToTensor');
    if (im.width !== width || im.height !== height) throw new Error(`imagesToTensor: image ${i} is ${im.width}×${im.height}, expected ${width}×${height} like image 0`);
    for (let j = 0; j < per; j++) out[i * per + j] = im.data[j]! / 255;
  });
  return tf.tensor4d(out, [images.length, height, width, 3], 'float32');
}
