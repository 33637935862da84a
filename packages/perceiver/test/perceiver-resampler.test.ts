import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { PerceiverResampler, padVisionTokens, perceiverResamplerArgsFromConfig } from '@vlm/perceiver';
import { bits, goldenCase, maxDiff, params, saveLoadRoundTrip } from '../../../test-helpers';

const small = () => new PerceiverResampler({ dim: 32, numQueries: 8, numLayers: 2, numHeads: 4 });

describe('PerceiverResampler (the design’s)', () => {
  test('state-dict keys and shapes are the PyTorch SeedPerceiverResampler ones', () => {
    const m = small();
    const shapes = m.stateDictShapes();
    expect(shapes.queries).toEqual([1, 8, 32]);
    expect(shapes['layers.1.cross_attn.in_proj_weight']).toEqual([96, 32]);
    expect(shapes['layers.1.cross_attn.in_proj_bias']).toEqual([96]);
    expect(shapes['layers.0.self_attn.out_proj.weight']).toEqual([32, 32]);
    expect(shapes['layers.0.ffn.0.weight']).toEqual([128, 32]);
    expect(shapes['layers.0.ffn.2.weight']).toEqual([32, 128]);
    expect(shapes['layers.0.ffn_norm.bias']).toEqual([32]);
    expect(Object.keys(shapes).length).toBe(1 + 2 * 18);
    expect(m.getConfig()).toEqual({ dim: 32, numQueries: 8, numLayers: 2, numHeads: 4 });
    m.dispose();
  });

  test('matches the vendored PyTorch golden case (forward)', () => {
    for (const name of ['seed_perceiver_v17', 'seed_perceiver_v5']) {
      const { sidecar, tensors } = goldenCase(name);
      const m = new PerceiverResampler(perceiverResamplerArgsFromConfig(sidecar.config));
      m.loadStateDict(params(tensors));
      const out = m.forward(tensors['input.vision_features']!);
      expect(out.shape).toEqual(tensors['output.out']!.shape);
      expect(maxDiff(out, tensors['output.out']!)).toBeLessThan(1e-4);
      tf.dispose([out, ...Object.values(tensors)]);
      m.dispose();
    }
  });

  test('a padded batch of images with different token counts equals the images run one by one', () => {
    const m = small();
    const images = [17, 5, 11].map((n, i) => tf.randomNormal([n, 32], 0, 1, 'float32', 10 + i));
    const { features, keyPaddingMask, lengths } = padVisionTokens(images);
    expect(features.shape).toEqual([3, 17, 32]);
    expect(lengths).toEqual([17, 5, 11]);
    // garbage (even NaN) in the padding must not matter
    const garbage = tf.where(tf.reshape(keyPaddingMask, [3, 17, 1]), tf.fill([3, 17, 32], NaN), features);
    const batch = m.forward(garbage, keyPaddingMask);
    expect(batch.shape).toEqual([3, 8, 32]);
    images.forEach((img, i) => {
      const alone = m.forward(tf.expandDims(img, 0));
      const row = tf.slice(batch, [i, 0, 0], [1, -1, -1]);
      expect(maxDiff(alone, row)).toBeLessThan(1e-5);
      tf.dispose([alone, row]);
    });
    // and without the mask the padded rows are different (the test can fail)
    const unmasked = m.forward(features);
    const [r1, a1] = [tf.slice(unmasked, [1, 0, 0], [1, -1, -1]), m.forward(tf.expandDims(images[1]!, 0))];
    expect(maxDiff(r1, a1)).toBeGreaterThan(1e-3);
    // a numeric mask (1 = padding) works like the bool one
    const numeric = m.forward(features, tf.cast(keyPaddingMask, 'float32'));
    expect(bits(numeric)).toEqual(bits(m.forward(features, keyPaddingMask)));
    tf.dispose([...images, features, keyPaddingMask, garbage, batch, unmasked, r1, a1, numeric]);
    m.dispose();
  });

  test('wrong rank, width or mask shape is an error that names both shapes', () => {
    const m = small();
    const x = tf.zeros([2, 17, 24]);
    expect(() => m.forward(x)).toThrow(/PerceiverResampler visionFeatures: expected shape \[batch, tokens, dim=32\], got \[2, 17, 24\]/);
    const r2 = tf.zeros([17, 32]);
    expect(() => m.forward(r2)).toThrow(/expected shape \[batch, tokens, dim=32\], got \[17, 32\]/);
    const ok = tf.zeros([2, 17, 32]);
    const mask = tf.zeros([2, 16], 'bool');
    expect(() => m.forward(ok, mask)).toThrow(/PerceiverResampler keyPaddingMask: expected shape \[batch=2, tokens=17\], got \[2, 16\]/);
    expect(() => padVisionTokens([tf.zeros([3, 32]), tf.zeros([3, 16])])).toThrow(/image 1: expected shape \[tokens, dim=32\], got \[3, 16\]/);
    tf.dispose([x, r2, ok, mask]);
    m.dispose();
  });

  test('no tensor leaks after forward and gradient calls', () => {
    const m = small();
    const x = tf.randomNormal([2, 9, 32]);
    const mask = tf.tensor2d([[0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1]], undefined, 'bool');
    const before = tf.memory().numTensors;
    tf.dispose(m.forward(x, mask));
    expect(tf.memory().numTensors).toBe(before);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(m.forward(x, mask))) as tf.Scalar, m.parameters());
    expect(Object.keys(grads).length).toBe(m.parameters().length);
    value.dispose();
    tf.dispose(Object.values(grads));
    const gx = tf.grad((xx: tf.Tensor) => tf.sum(m.forward(xx, mask)))(x);
    // padded tokens get no gradient
    expect(tf.tidy(() => tf.max(tf.abs(tf.slice(gx, [1, 5, 0], [1, 4, 32]))).dataSync()[0])).toBe(0);
    gx.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, mask]);
    m.dispose();
  });

  test('tfjs-layers save → load round trip gives identical outputs', async () => {
    const x = tf.randomNormal([2, 17, 32], 0, 1, 'float32', 4);
    const r = await saveLoadRoundTrip(small(), [[17, 32]], [x]);
    expect(r.topology).toContain('PerceiverResampler');
    expect(r.a.shape).toEqual([2, 8, 32]);
    expect(bits(r.b)).toEqual(bits(r.a));
    expect(r.leaked).toBe(0);
    r.dispose();
    x.dispose();
  });
});
