import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, test } from 'vitest';
import {
  CLIP_MEAN,
  CLIP_STD,
  blip2Preprocessing,
  clipPreprocessing,
  imageToTensor,
  mobileNetPreprocessing,
  preprocessImages,
  preprocessingFromHfConfig,
  readImageSource,
  sniffImageFormat,
  type ImagePreprocessing,
} from '../src/vision/index';
import { decodeImage } from '../src/node/index';
import { decodeImage as decodeImageInBrowser } from '../src/vision/index';

/** A w×h RGBA test pattern: smooth gradients plus a colour block (JPEG-friendly). */
function pattern(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      const block = x >= width / 2 && y >= height / 2;
      data[i] = block ? 220 : Math.round((255 * x) / (width - 1));
      data[i + 1] = block ? 30 : Math.round((255 * y) / (height - 1));
      data[i + 2] = block ? 40 : 128;
      data[i + 3] = 255;
    }
  }
  return data;
}

const plain = (over: Partial<ImagePreprocessing>): ImagePreprocessing => ({
  resize: null,
  crop: null,
  resample: 'half-pixel',
  rescale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  layout: 'NHWC',
  ...over,
});

describe('decodeImage (Node: pngjs, jpeg-js)', () => {
  test('a PNG made with pngjs decodes to the exact pixels', async () => {
    const png = new PNG({ width: 12, height: 8 });
    const data = pattern(12, 8);
    png.data.set(data);
    const bytes = new Uint8Array(PNG.sync.write(png));
    expect(sniffImageFormat(bytes)).toBe('png');
    const img = await decodeImage(bytes);
    expect([img.width, img.height, img.channels]).toEqual([12, 8, 4]);
    expect(Array.from(img.data)).toEqual(Array.from(data));
  });

  test('a JPEG made with jpeg-js decodes to nearly the same pixels', async () => {
    const data = pattern(32, 16);
    const bytes = new Uint8Array(jpeg.encode({ data, width: 32, height: 16 }, 95).data);
    expect(sniffImageFormat(bytes)).toBe('jpeg');
    const img = await decodeImage(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    expect([img.width, img.height]).toEqual([32, 16]);
    let worst = 0;
    for (let i = 0; i < data.length; i++) if (i % 4 !== 3) worst = Math.max(worst, Math.abs(img.data[i]! - data[i]!));
    expect(worst).toBeLessThan(24);
    const t = imageToTensor(img);
    expect(t.shape).toEqual([16, 32, 3]);
    t.dispose();
  });

  test('other bytes are a clear error', async () => {
    await expect(decodeImage(new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61]))).rejects.toThrow(/expected a PNG or JPEG file, got one that is not \(first bytes: 47 49 46 38 39 61\)/);
    const broken = new Uint8Array(PNG.sync.write(Object.assign(new PNG({ width: 4, height: 4 }), {}))).slice(0, 40);
    await expect(decodeImage(broken)).rejects.toThrow(/expected a valid PNG image, got one that could not be decoded/);
  });
});

describe('decodeImage (main entry: the browser decoder)', () => {
  test('in Node it points to @vlm/frozen-loaders/node; bad bytes are still named first', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]);
    await expect(decodeImageInBrowser(png)).rejects.toThrow(/no createImageBitmap\/OffscreenCanvas .*import decodeImage from '@vlm\/frozen-loaders\/node'/);
    await expect(decodeImageInBrowser(new Uint8Array([1, 2]))).rejects.toThrow(/expected a PNG or JPEG file, got one that is not \(first bytes: 01 02\)/);
  });
});

describe('browser-style sources', () => {
  test('ImageData-like objects and canvases are read as RGBA', () => {
    const data = new Uint8ClampedArray(pattern(4, 2));
    const imageData = { data, width: 4, height: 2 };
    expect(readImageSource(imageData)).toBe(imageData);
    const canvas = { width: 4, height: 2, getContext: () => ({ getImageData: () => imageData }) };
    const fromCanvas = readImageSource(canvas as never);
    expect([fromCanvas.width, fromCanvas.height, fromCanvas.channels]).toEqual([4, 2, 4]);
    const t = imageToTensor(canvas as never);
    expect(t.shape).toEqual([2, 4, 3]);
    expect(Array.from(t.dataSync().slice(0, 3))).toEqual([data[0], data[1], data[2]]);
    t.dispose();
  });
});

describe('resize, center crop, normalise', () => {
  // 1×4 row of grey levels, R = G = B.
  const row = (values: number[]) => ({ data: Uint8Array.from(values.flatMap((v) => [v, v, v])), width: values.length, height: 1, channels: 3 as const });

  test('half-pixel bilinear downsampling averages neighbour pairs (PIL/torchvision grid)', () => {
    const out = preprocessImages([row([0, 100, 200, 40])], plain({ resize: { height: 1, width: 2 } }));
    expect(out.shape).toEqual([1, 1, 2, 3]);
    expect(Array.from(out.dataSync()).filter((_, i) => i % 3 === 0)).toEqual([50, 120]);
    out.dispose();
  });

  test('align-corners bilinear (nsfwjs) keeps the end pixels and interpolates between', () => {
    const out = preprocessImages([row([0, 100])], plain({ resize: { height: 1, width: 3 }, resample: 'align-corners' }));
    expect(Array.from(out.dataSync()).filter((_, i) => i % 3 === 0)).toEqual([0, 50, 100]);
    out.dispose();
  });

  test('shortest edge keeps the aspect ratio (long side floored), then the center crop', () => {
    // 2×6 image: shortest edge 2 keeps it; crop 2×2 takes columns floor((6-2)/2) = 2..3.
    const values = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110];
    const img = { data: Uint8Array.from(values.flatMap((v) => [v, v, v])), width: 6, height: 2, channels: 3 as const };
    const out = preprocessImages([img], plain({ resize: { shortestEdge: 2 }, crop: { height: 2, width: 2 } }));
    expect(out.shape).toEqual([1, 2, 2, 3]);
    expect(Array.from(out.dataSync()).filter((_, i) => i % 3 === 0)).toEqual([20, 30, 80, 90]);
    out.dispose();
    // 4×6 to shortest edge 2: 2×floor(2·6/4) = 2×3
    const big = { data: new Uint8Array(4 * 6 * 3), width: 6, height: 4, channels: 3 as const };
    const r = preprocessImages([big], plain({ resize: { shortestEdge: 2 } }));
    expect(r.shape).toEqual([1, 2, 3, 3]);
    r.dispose();
  });

  test('rescale and normalise with the CLIP mean/std, NCHW', () => {
    const img = { data: Uint8Array.from([255, 128, 0, 0, 64, 255]), width: 2, height: 1, channels: 3 as const };
    const p = { ...clipPreprocessing(2), resize: null, crop: null };
    const out = preprocessImages([img, img], p);
    expect(out.shape).toEqual([2, 3, 1, 2]); // NCHW
    const v = out.arraySync() as number[][][][];
    const want = (x: number, c: number) => (x / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;
    expect(v[1]![0]![0]![0]).toBeCloseTo(want(255, 0), 5);
    expect(v[1]![1]![0]![0]).toBeCloseTo(want(128, 1), 5);
    expect(v[0]![2]![0]![1]).toBeCloseTo(want(255, 2), 5);
    out.dispose();
  });

  test('presets: CLIP and MobileNet (nsfwjs) differ in mean/std, range, grid and layout', () => {
    expect(clipPreprocessing(224)).toMatchObject({ resize: { shortestEdge: 224 }, crop: { height: 224, width: 224 }, layout: 'NCHW', mean: CLIP_MEAN, std: CLIP_STD });
    expect(blip2Preprocessing(224)).toMatchObject({ resize: { height: 224, width: 224 }, crop: null, layout: 'NCHW' });
    expect(mobileNetPreprocessing()).toMatchObject({ resize: { height: 224, width: 224 }, crop: null, layout: 'NHWC', mean: [0, 0, 0], std: [1, 1, 1], resample: 'align-corners' });
    const img = { data: pattern(300, 200), width: 300, height: 200 };
    const before = tf.memory().numTensors;
    const clip = preprocessImages([img], clipPreprocessing(224));
    const mobile = preprocessImages([img], mobileNetPreprocessing());
    expect(clip.shape).toEqual([1, 3, 224, 224]);
    expect(mobile.shape).toEqual([1, 224, 224, 3]);
    const [lo, hi] = tf.tidy(() => [mobile.min().dataSync()[0]!, mobile.max().dataSync()[0]!]);
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
    expect(tf.tidy(() => clip.min().dataSync()[0]!)).toBeLessThan(-1); // normalised
    tf.dispose([clip, mobile]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test("preprocessingFromHfConfig reads a CLIPImageProcessor's preprocessor_config.json", () => {
    const p = preprocessingFromHfConfig(
      JSON.stringify({
        crop_size: { height: 336, width: 336 },
        do_center_crop: true,
        do_normalize: true,
        do_resize: true,
        image_mean: [0.5, 0.5, 0.5],
        image_std: [0.25, 0.25, 0.25],
        rescale_factor: 0.00392156862745098,
        size: { shortest_edge: 336 },
      }),
    );
    expect(p).toMatchObject({ resize: { shortestEdge: 336 }, crop: { height: 336, width: 336 }, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], layout: 'NCHW' });
    expect(() => preprocessingFromHfConfig({ size: 'big' })).toThrow(/field 'size'/);
  });

  test('images of different sizes without a crop are an error', () => {
    const a = { data: new Uint8Array(2 * 2 * 3), width: 2, height: 2, channels: 3 as const };
    const b = { data: new Uint8Array(2 * 3 * 3), width: 3, height: 2, channels: 3 as const };
    expect(() => preprocessImages([a, b], plain({}))).toThrow(/different sizes/);
  });
});
