import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { Embedding, FeedForward, GELU, LayerNorm, Linear, gelu, linear } from '@vlm/core';

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('Linear', () => {
  test('forward on any rank and its hand-written gradient equal the stock matMul and its gradient', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 1);
      const k = tf.randomNormal([5, 4], 0, 1, 'float32', 2);
      const b = tf.randomNormal([4], 0, 1, 'float32', 3);
      const w = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 4);
      const ours = (xx: tf.Tensor, kk: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear(xx, kk, bb), w));
      const stock = (xx: tf.Tensor, kk: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.matMul(tf.reshape(xx, [6, 5]), kk).reshape([2, 3, 4]), bb), w));
      expect(maxDiff(linear(x, k, b), tf.add(tf.reshape(tf.matMul(tf.reshape(x, [6, 5]), k), [2, 3, 4]), b))).toBeLessThan(1e-5);
      const g1 = tf.grads(ours)([x, k, b]);
      const g2 = tf.grads(stock)([x, k, b]);
      g1.forEach((g, i) => expect(maxDiff(g, g2[i]!)).toBeLessThan(1e-4));
      const h1 = tf.grads((xx: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.mul(linear(xx, kk, null), w)))([x, k]);
      const h2 = tf.grads((xx: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.mul(tf.reshape(tf.matMul(tf.reshape(xx, [6, 5]), kk), [2, 3, 4]), w)))([x, k]);
      h1.forEach((g, i) => expect(maxDiff(g, h2[i]!)).toBeLessThan(1e-4));
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('a wrong input width is an error that names both shapes', () => {
    const fc = new Linear({ inFeatures: 4, outFeatures: 2 });
    const x = tf.zeros([3, 5]);
    expect(() => fc.forward(x)).toThrow(/Linear input: expected shape \[3, 4\], got \[3, 5\]/);
    x.dispose();
    fc.dispose();
  });
});

describe('LayerNorm, GELU, FeedForward', () => {
  test('LayerNorm uses biased variance and eps', () => {
    tf.tidy(() => {
      const ln = new LayerNorm({ dim: 4, eps: 1e-12 });
      const y = ln.forward(tf.tensor2d([[1, 2, 3, 4]]));
      const mean = 2.5, std = Math.sqrt(1.25);
      (y.arraySync() as number[][])[0]!.forEach((v, i) => expect(v).toBeCloseTo((i + 1 - mean) / std, 5));
      ln.dispose();
    });
  });

  test('LayerNorm gradients (closed form) equal autodiff of the formula, with and without affine, and leak nothing', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.add(tf.mul(tf.randomNormal([2, 3, 8], 0, 1, 'float32', 1), 3), 1);
      const w = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 2);
      const gamma = tf.randomNormal([8], 1, 0.5, 'float32', 3);
      const beta = tf.randomNormal([8], 0, 0.5, 'float32', 4);
      const formula = (xx: tf.Tensor, g?: tf.Tensor, b?: tf.Tensor) => {
        const { mean, variance } = tf.moments(xx, -1, true);
        const y = tf.div(tf.sub(xx, mean), tf.sqrt(tf.add(variance, 1e-5)));
        return g && b ? tf.add(tf.mul(y, g), b) : y;
      };
      const ln = new LayerNorm({ dim: 8 });
      ln.loadStateDict({ weight: gamma, bias: beta });
      // Our LayerNorm differentiated with respect to its parameters (variables) and its input.
      const params = ln.parameters();
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(ln.forward(x), w)) as tf.Scalar, params);
      const [dx] = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(ln.forward(xx), w)))([x]);
      const ref = tf.grads((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(formula(xx, g, b), w)))([x, gamma, beta]);
      expect(maxDiff(value, tf.sum(tf.mul(formula(x, gamma, beta), w)))).toBeLessThan(1e-4);
      expect(maxDiff(dx!, ref[0]!)).toBeLessThan(1e-4);
      expect(maxDiff(grads[params[0]!.name]!, ref[1]!)).toBeLessThan(1e-4);
      expect(maxDiff(grads[params[1]!.name]!, ref[2]!)).toBeLessThan(1e-4);
      const plain = new LayerNorm({ dim: 8, elementwiseAffine: false });
      const [dxPlain] = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(plain.forward(xx), w)))([x]);
      const [refPlain] = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(formula(xx), w)))([x]);
      expect(maxDiff(dxPlain!, refPlain!)).toBeLessThan(1e-4);
      ln.dispose();
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('exact and tanh GELU', () => {
    tf.tidy(() => {
      const x = tf.tensor1d([-2, -0.5, 0, 0.5, 2]);
      const erfRef = [-0.04550026, -0.15426877, 0, 0.34573123, 1.95449974];
      const tanhRef = [-0.04540231, -0.15428599, 0, 0.34571401, 1.95459769];
      Array.from(gelu(x).dataSync()).forEach((v, i) => expect(v).toBeCloseTo(erfRef[i]!, 5));
      Array.from(new GELU('tanh').forward(x).dataSync()).forEach((v, i) => expect(v).toBeCloseTo(tanhRef[i]!, 5));
    });
  });

  test('FeedForward keys follow PyTorch Sequential indices', () => {
    const plain = new FeedForward({ dim: 4 });
    const flamingo = new FeedForward({ dim: 4, mult: 2, bias: false, preNorm: true });
    expect(plain.stateDictShapes()).toEqual({ '0.weight': [16, 4], '0.bias': [16], '2.weight': [4, 16], '2.bias': [4] });
    expect(flamingo.stateDictShapes()).toEqual({ '0.weight': [4], '0.bias': [4], '1.weight': [8, 4], '3.weight': [4, 8] });
    plain.dispose();
    flamingo.dispose();
  });
});

describe('Embedding', () => {
  test('lookup, gradient with padding_idx, out-of-range ids', () => {
    const before = tf.memory().numTensors;
    const emb = new Embedding({ numEmbeddings: 5, embeddingDim: 3, paddingIdx: 0 });
    expect((emb.weight.arraySync() as number[][])[0]).toEqual([0, 0, 0]);
    tf.tidy(() => {
      const ids = tf.tensor2d([[1, 0, 1], [4, 4, 2]], undefined, 'int32');
      const out = emb.forward(ids);
      expect(out.shape).toEqual([2, 3, 3]);
      const { grads } = tf.variableGrads(() => tf.sum(emb.forward(ids)) as tf.Scalar, [emb.weight]);
      // row r gets (number of occurrences of r) in every column; the padding row 0 gets none
      expect(grads[emb.weight.name]!.arraySync()).toEqual([[0, 0, 0], [2, 2, 2], [1, 1, 1], [0, 0, 0], [2, 2, 2]]);
      expect(() => emb.forward(tf.tensor1d([5], 'int32'))).toThrow(/Embedding ids must be in \[0, 5\), got values in \[5, 5\]/);
      expect(() => emb.forward(tf.tensor1d([1]))).toThrow(/Embedding ids: expected dtype int32, got float32/);
    });
    emb.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
