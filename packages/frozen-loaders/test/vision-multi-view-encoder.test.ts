import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { IMAGE_VIEW, IMAGE_VIEWS, LayersModelEncoder, boxBlurView, imageViewsNamed, MAX_CHANNEL_VIEW, MultiViewVisionEncoder, mobileNetPreprocessing, viewsSideBySide, type ImagePreprocessing, type ImageView } from '../src/vision/index';

function smallEncoder(): LayersModelEncoder {
  const input = tfl.input({ shape: [8, 8, 3], name: 'image' });
  const c1 = tfl.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c1', seed: 5 } as never).apply(input) as tfl.SymbolicTensor;
  return new LayersModelEncoder(tfl.model({ inputs: input, outputs: c1, name: 'tiny' }), { layer: 'c1' });
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('MAX_CHANNEL_VIEW', () => {
  test('NHWC in [0, 1]: every pixel becomes its largest channel in all three', () => {
    const pixels = tf.tensor4d([0.2, 0.5, 0.9, 0.7, 0.1, 0.3], [1, 1, 2, 3]);
    const view = MAX_CHANNEL_VIEW.apply(pixels, mobileNetPreprocessing(224));
    expect(view.shape).toEqual([1, 1, 2, 3]);
    expect(Array.from(view.dataSync())).toEqual([0.9, 0.9, 0.9, 0.7, 0.7, 0.7].map((v) => Math.fround(v)));
    tf.dispose([pixels, view]);
  });

  test('NCHW with a mean/std normalisation: the max is taken on the rescaled values, then normalised again', () => {
    const pre: ImagePreprocessing = { ...mobileNetPreprocessing(224), layout: 'NCHW', mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.5] };
    const raw = [[0.1, 0.8], [0.6, 0.2], [0.3, 0.3]]; // [channel][pixel], rescaled values
    const norm = raw.map((ch, c) => ch.map((v) => (v - pre.mean[c]!) / pre.std[c]!));
    const pixels = tf.tensor4d(norm.flat(), [1, 3, 1, 2]);
    const view = MAX_CHANNEL_VIEW.apply(pixels, pre);
    const max = [0.6, 0.8]; // per pixel
    const want = [0, 1, 2].flatMap((c) => max.map((m) => (m - pre.mean[c]!) / pre.std[c]!));
    const got = Array.from(view.dataSync());
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 5));
    tf.dispose([pixels, view]);
  });

  test('a batch that is not 4-D with 3 channels in the layout is an error that says what came', () => {
    const pre = mobileNetPreprocessing(224);
    expect(() => MAX_CHANNEL_VIEW.apply(tf.zeros([2, 8, 8, 4]), pre)).toThrow(/expected NHWC pixels with 3 channels, got \[2,8,8,4\]/);
    expect(() => MAX_CHANNEL_VIEW.apply(tf.zeros([8, 8, 3]), pre)).toThrow(/got \[8,8,3\]/);
  });
});

describe('boxBlurView', () => {
  test('each pixel the mean of the size×size square around it, inside the image at the borders; NHWC and NCHW', () => {
    // one channel pattern on a 3×3 image, the same in all three channels (scaled per channel)
    const grid = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const nhwc = tf.tensor4d(grid.flatMap((v) => [v, 10 * v, 100 * v]), [1, 3, 3, 3]);
    const pre = mobileNetPreprocessing(224);
    const blur = boxBlurView(3);
    expect(blur.name).toBe('box-blur-3');
    const out = blur.apply(nhwc, pre);
    // centre: mean of all 9 = 5; corner (0,0): mean of 1,2,4,5 = 3; edge (0,1): mean of 1,2,3,4,5,6 = 3.5
    const got = out.arraySync() as number[][][][];
    expect(got[0]![1]![1]).toEqual([5, 50, 500]);
    expect(got[0]![0]![0]![0]).toBeCloseTo(3, 5);
    expect(got[0]![0]![1]![2]).toBeCloseTo(350, 3);
    const nchw = tf.transpose(nhwc, [0, 3, 1, 2]);
    const outNchw = boxBlurView(3).apply(nchw, { ...pre, layout: 'NCHW' });
    expect(maxDiff(tf.transpose(outNchw, [0, 2, 3, 1]), out)).toBe(0);
    expect(maxDiff(boxBlurView(1).apply(nhwc, pre), nhwc)).toBe(0);
    tf.dispose([nhwc, out, nchw, outNchw]);
    expect(() => boxBlurView(0)).toThrow(/size must be a positive integer \(pixels\), got 0/);
    expect(() => boxBlurView(2.5)).toThrow(/got 2.5/);
    expect(() => blur.apply(tf.zeros([3, 3, 3]), pre)).toThrow(/box-blur-3: expected NHWC pixels \[batch, ...\], got \[3,3,3\]/);
  });
});

describe('MultiViewVisionEncoder', () => {
  test('tokens are each view encoded, view after view; sizes and names follow; no leaks', () => {
    const raw = smallEncoder();
    const enc = new MultiViewVisionEncoder(raw, [IMAGE_VIEW, MAX_CHANNEL_VIEW]);
    expect([enc.numTokens, enc.tokenWidth, enc.tokensPerView, enc.inputLayout]).toEqual([2 * raw.numTokens, raw.tokenWidth, raw.numTokens, raw.inputLayout]);
    expect(enc.preprocessing).toBe(raw.preprocessing);
    expect(enc.name).toBe(`${raw.name}, views image + max-channel`);
    const pixels = tf.randomUniform([3, 8, 8, 3], 0, 1, 'float32', 7);
    const before = tf.memory().numTensors;
    const out = enc.encode(pixels);
    expect(out.shape).toEqual([3, 2 * raw.numTokens, raw.tokenWidth]);
    const first = raw.encode(pixels);
    const grey = MAX_CHANNEL_VIEW.apply(pixels, raw.preprocessing);
    const second = raw.encode(grey);
    const n = raw.numTokens;
    const [head, tail] = tf.split(out, [n, n], 1);
    expect(maxDiff(head!, first)).toBe(0);
    expect(maxDiff(tail!, second)).toBe(0);
    expect(maxDiff(first, second)).toBeGreaterThan(1e-3); // the views really differ
    tf.dispose([out, head!, tail!, first, grey, second]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(pixels);
    enc.dispose();
  });

  test("join 'channels' puts the views side by side per position, what viewsSideBySide makes of the 'tokens' join", () => {
    const raw = smallEncoder();
    const byTokens = new MultiViewVisionEncoder(raw, [IMAGE_VIEW, MAX_CHANNEL_VIEW], { ownsEncoder: false });
    const byChannels = new MultiViewVisionEncoder(raw, [IMAGE_VIEW, MAX_CHANNEL_VIEW], { join: 'channels', ownsEncoder: false });
    expect([byChannels.numTokens, byChannels.tokenWidth, byChannels.join]).toEqual([raw.numTokens, 2 * raw.tokenWidth, 'channels']);
    expect(byChannels.name).toBe(`${raw.name}, views image + max-channel side by side`);
    const pixels = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 11);
    const [t, c] = [byTokens.encode(pixels), byChannels.encode(pixels)];
    const before = tf.memory().numTensors;
    const moved = viewsSideBySide(t, 2);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(moved.shape).toEqual(c.shape);
    expect(maxDiff(moved, c)).toBe(0);
    // position p of the side-by-side tokens is [view 0's token p, view 1's token p]
    const n = raw.numTokens;
    const tv = t.arraySync() as number[][][];
    const cv = c.arraySync() as number[][][];
    expect(cv[1]![3]).toEqual([...tv[1]![3]!, ...tv[1]![n + 3]!]);
    tf.dispose([pixels, t, c, moved]);
    expect(() => viewsSideBySide(tf.zeros([1, 5, 2]), 2)).toThrow(/expected tokens \[batch, 2·tokens, width\].*got \[1,5,2\]/);
    expect(() => viewsSideBySide(tf.zeros([1, 4, 2]), 0)).toThrow(/views must be a positive integer, got 0/);
    expect(() => new MultiViewVisionEncoder(raw, [IMAGE_VIEW], { join: 'rows' as never, ownsEncoder: false })).toThrow(/join must be 'tokens' or 'channels', got 'rows'/);
    raw.dispose();
  });

  test('one view is the wrapped encoder itself', () => {
    const raw = smallEncoder();
    const enc = new MultiViewVisionEncoder(raw, [IMAGE_VIEW], { ownsEncoder: false });
    const pixels = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 9);
    const [a, b] = [enc.encode(pixels), raw.encode(pixels)];
    expect(maxDiff(a, b)).toBe(0);
    tf.dispose([pixels, a, b]);
    enc.dispose();
    raw.dispose();
  });

  test('no views, repeated names and a view that changes the shape are errors that say what was expected', () => {
    const raw = smallEncoder();
    expect(() => new MultiViewVisionEncoder(raw, [], { ownsEncoder: false })).toThrow(/at least one view, got none/);
    expect(() => new MultiViewVisionEncoder(raw, [IMAGE_VIEW, MAX_CHANNEL_VIEW, IMAGE_VIEW], { ownsEncoder: false })).toThrow(/'image' is given twice/);
    const crop: ImageView = { name: 'crop', apply: (p) => tf.slice(p, [0, 0, 0, 0], [-1, 4, 4, -1]) };
    const enc = new MultiViewVisionEncoder(raw, [IMAGE_VIEW, crop], { ownsEncoder: false });
    const pixels = tf.zeros([1, 8, 8, 3]);
    const before = tf.memory().numTensors;
    expect(() => enc.encode(pixels)).toThrow(/view 'crop' must keep the pixels' shape \[1,8,8,3\], got \[1,4,4,3\]/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(pixels);
    raw.dispose();
  });
});

describe('imageViewsNamed', () => {
  test('names → views in that order; an unknown name lists the known ones', () => {
    expect(imageViewsNamed(['max-channel', 'image'])).toEqual([MAX_CHANNEL_VIEW, IMAGE_VIEW]);
    const [blur] = imageViewsNamed(['box-blur-15']);
    expect(blur!.name).toBe('box-blur-15');
    expect(() => imageViewsNamed(['box-blur-0'])).toThrow(/no view named 'box-blur-0'/);
    expect(Object.keys(IMAGE_VIEWS)).toEqual(['image', 'max-channel']);
    expect(() => imageViewsNamed(['image', 'sepia'])).toThrow(/no view named 'sepia' \(known: image, max-channel, box-blur-<size>\)/);
    expect(() => imageViewsNamed(['toString'])).toThrow(/no view named 'toString'/);
  });
});
