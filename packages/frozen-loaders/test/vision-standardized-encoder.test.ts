import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { LayersModelEncoder, StandardizedVisionEncoder, visionTokenStatistics } from '../src/vision/index';

function smallEncoder(): LayersModelEncoder {
  const input = tfl.input({ shape: [8, 8, 3], name: 'image' });
  const c1 = tfl.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c1', seed: 3 } as never).apply(input) as tfl.SymbolicTensor;
  return new LayersModelEncoder(tfl.model({ inputs: input, outputs: c1, name: 'tiny' }), { layer: 'c1' });
}

describe('visionTokenStatistics and StandardizedVisionEncoder', () => {
  test('statistics per channel over images and tokens (population variance), floored at minStd', () => {
    // channel 0: values 1..8; channel 1: constant 5 (→ minStd)
    const x = tf.tensor3d([[[1, 5], [2, 5]], [[3, 5], [4, 5]], [[5, 5], [6, 5]], [[7, 5], [8, 5]]]);
    const { mean, std } = visionTokenStatistics(x, { minStd: 0.25 });
    expect(Array.from(mean.dataSync())).toEqual([4.5, 5]);
    const want = Math.sqrt([1, 2, 3, 4, 5, 6, 7, 8].reduce((s, v) => s + (v - 4.5) ** 2, 0) / 8);
    expect(std.dataSync()[0]).toBeCloseTo(want, 5);
    expect(std.dataSync()[1]).toBeCloseTo(0.25, 6);
    tf.dispose([x, mean, std]);
  });

  test('encode = (encoder tokens − mean) / std; standardized training tokens have mean 0 and std 1; no leaks', () => {
    const raw = smallEncoder();
    const pixels = tf.randomUniform([6, 8, 8, 3], 0, 1, 'float32', 1);
    const tokens = raw.encode(pixels);
    const stats = visionTokenStatistics(tokens, { minStd: 1e-6 });
    const enc = new StandardizedVisionEncoder(raw, stats);
    tf.dispose([stats.mean, stats.std]); // the encoder keeps its own copies
    expect([enc.tokenWidth, enc.numTokens, enc.inputLayout]).toEqual([raw.tokenWidth, raw.numTokens, raw.inputLayout]);
    expect(enc.preprocessing).toBe(raw.preprocessing);
    const before = tf.memory().numTensors;
    const out = enc.encode(pixels);
    const want = tf.tidy(() => tf.div(tf.sub(tokens, enc.mean), enc.std));
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(out, want))).dataSync()[0])).toBeLessThan(1e-6);
    const m = tf.moments(out, [0, 1]);
    expect(Math.max(...Array.from(m.mean.dataSync()).map(Math.abs))).toBeLessThan(1e-4);
    for (const v of m.variance.dataSync()) expect(v === 0 || Math.abs(v - 1) < 1e-3).toBe(true); // dead ReLU channels stay 0
    tf.dispose([out, want, m.mean, m.variance]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([pixels, tokens]);
    enc.dispose();
  });

  test('wrong widths, dtypes, empty inputs and non-positive std are errors that say what was expected', () => {
    const raw = smallEncoder();
    expect(() => new StandardizedVisionEncoder(raw, { mean: tf.zeros([4]) as tf.Tensor1D, std: tf.ones([5]) as tf.Tensor1D }, { ownsEncoder: false })).toThrow(/mean: expected \[5\].*got \[4\]/);
    expect(() => new StandardizedVisionEncoder(raw, { mean: tf.zeros([5]) as tf.Tensor1D, std: tf.zeros([5]) as tf.Tensor1D }, { ownsEncoder: false })).toThrow(/std must be finite and > 0, channel 0 is 0/);
    expect(() => visionTokenStatistics(tf.zeros([2, 5]))).toThrow(/expected tokens \[images, tokens, width\], got \[2,5\]/);
    expect(() => visionTokenStatistics(tf.zeros([0, 3, 5]))).toThrow(/no tokens/);
    expect(() => visionTokenStatistics(tf.zeros([2, 3, 5], 'int32'))).toThrow(/float32/);
    const enc = new StandardizedVisionEncoder(raw, { mean: tf.zeros([5]) as tf.Tensor1D, std: tf.ones([5]) as tf.Tensor1D });
    expect(() => enc.standardize(tf.zeros([1, 3, 4]))).toThrow(/width 5, got \[1,3,4\]/);
    enc.dispose();
  });
});
