import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { MlpProjector } from '@vlm/core';

const erfGelu = (x: number) => {
  // Abramowitz-Stegun 7.1.26 is too coarse; use a series for |x| small enough in this test
  let sum = 0;
  let term = x / Math.SQRT2;
  for (let n = 0; n < 60; n++) {
    sum += term / (2 * n + 1);
    term *= (-(x * x) / 2) / (n + 1);
  }
  return 0.5 * x * (1 + (2 / Math.sqrt(Math.PI)) * sum);
};

describe('MlpProjector', () => {
  test('linear_2(gelu(linear_1(x))) computed by hand, LLaVA key names, shape errors', () => {
    const p = new MlpProjector({ inFeatures: 2, outFeatures: 2, hiddenFeatures: 3 });
    expect(p.stateDictShapes()).toEqual({ 'linear_1.weight': [3, 2], 'linear_1.bias': [3], 'linear_2.weight': [2, 3], 'linear_2.bias': [2] });
    const W1 = [[0.5, -1], [1, 1], [-0.3, 0.2]];
    const b1 = [0.1, -0.2, 0];
    const W2 = [[1, 0.5, -1], [0, 2, 0.25]];
    const b2 = [0.05, -0.1];
    const sd = { 'linear_1.weight': tf.tensor2d(W1), 'linear_1.bias': tf.tensor1d(b1), 'linear_2.weight': tf.tensor2d(W2), 'linear_2.bias': tf.tensor1d(b2) };
    p.loadStateDict(sd);
    const x = [0.7, -1.2];
    const h = W1.map((r, i) => erfGelu(r[0]! * x[0]! + r[1]! * x[1]! + b1[i]!));
    const want = W2.map((r, o) => r.reduce((s, w, i) => s + w * h[i]!, b2[o]!));
    const input = tf.tensor3d([[x]]);
    const before = tf.memory().numTensors;
    const y = p.forward(input);
    expect(y.shape).toEqual([1, 1, 2]);
    Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const wrong = tf.zeros([1, 4, 3]);
    expect(() => p.forward(wrong)).toThrow(/MlpProjector input: expected shape \[1, 4, 2\], got \[1, 4, 3\]/);
    tf.dispose([...Object.values(sd), input, wrong]);
    p.dispose();
  });
});

describe('LM-side helpers re-exported by @vlm/qformer', () => {
  test('are the very objects @vlm/core exports (one implementation, two import paths)', async () => {
    const core = await import('@vlm/core');
    const qformer = await import('@vlm/qformer');
    for (const name of ['IGNORE_INDEX', 'crossEntropy', 'causalLmLoss', 'buildLmInputs', 'addImagePlaceholders', 'MlpProjector'] as const) {
      expect(qformer[name], name).toBe(core[name]);
    }
    expect(core.IGNORE_INDEX).toBe(-100);
  });
});
