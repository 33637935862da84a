import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { FlamingoPerceiverResampler, flamingoPerceiverResamplerArgsFromConfig } from '@vlm/perceiver';
import { bits, goldenCase, maxDiff, params, saveLoadRoundTrip } from '../../../test-helpers';

const args = { dim: 32, depth: 2, dimHead: 8, heads: 4, numLatents: 6, maxNumMedia: 3, maxNumFrames: 4 };

describe('FlamingoPerceiverResampler', () => {
  test('state-dict keys and shapes are OpenFlamingo’s', () => {
    const m = new FlamingoPerceiverResampler(args);
    const shapes = m.stateDictShapes();
    expect(shapes).toMatchObject({
      latents: [6, 32],
      frame_embs: [4, 32],
      media_time_embs: [3, 1, 32],
      'layers.1.0.norm_media.weight': [32],
      'layers.1.0.norm_latents.bias': [32],
      'layers.1.0.to_q.weight': [32, 32],
      'layers.1.0.to_kv.weight': [64, 32],
      'layers.1.0.to_out.weight': [32, 32],
      'layers.1.1.0.weight': [32],
      'layers.1.1.1.weight': [128, 32],
      'layers.1.1.3.weight': [32, 128],
      'norm.weight': [32],
    });
    expect(Object.keys(shapes).length).toBe(3 + 2 * 11 + 2);
    const plain = new FlamingoPerceiverResampler({ dim: 32, depth: 1 });
    expect(Object.keys(plain.stateDictShapes())).not.toContain('frame_embs');
    expect(Object.keys(plain.stateDictShapes())).not.toContain('media_time_embs');
    m.dispose();
    plain.dispose();
  });

  test('matches the vendored PyTorch golden cases (forward)', () => {
    for (const name of ['flamingo_perceiver_T2F1', 'flamingo_perceiver_T2F3']) {
      const { sidecar, tensors } = goldenCase(name);
      const m = new FlamingoPerceiverResampler(flamingoPerceiverResamplerArgsFromConfig(sidecar.config));
      m.loadStateDict(params(tensors));
      const out = m.forward(tensors['input.x']!);
      expect(out.shape).toEqual(tensors['output.out']!.shape);
      expect(maxDiff(out, tensors['output.out']!)).toBeLessThan(1e-4);
      tf.dispose([out, ...Object.values(tensors)]);
      m.dispose();
    }
  });

  test('rank 3 and 4 inputs are T = F = 1 and F = 1; media items are resampled independently', () => {
    const m = new FlamingoPerceiverResampler({ ...args, maxNumMedia: undefined });
    const x = tf.randomNormal([2, 3, 1, 5, 32], 0, 1, 'float32', 1);
    const full = m.forward(x);
    expect(full.shape).toEqual([2, 3, 6, 32]);
    const r4 = m.forward(tf.reshape(x, [2, 3, 5, 32]));
    expect(bits(r4)).toEqual(bits(full));
    const one = tf.reshape(tf.slice(x, [0, 1, 0, 0, 0], [2, 1, 1, 5, 32]), [2, 5, 32]);
    const r3 = m.forward(one);
    expect(r3.shape).toEqual([2, 1, 6, 32]);
    const part = tf.slice(full, [0, 1, 0, 0], [2, 1, 6, 32]);
    expect(maxDiff(r3, part)).toBeLessThan(1e-5);
    tf.dispose([x, full, r4, one, r3, part]);
    m.dispose();
  });

  test('wrong rank, width, or too many frames / media is an error that names both shapes', () => {
    const m = new FlamingoPerceiverResampler(args);
    const cases: Array<[number[], RegExp]> = [
      [[2, 32], /expected shape \[batch, media, frames, tokens, dim=32\].*got \[2, 32\]/],
      [[2, 1, 1, 5, 24], /got \[2, 1, 1, 5, 24\]/],
      [[2, 1, 5, 5, 32], /frames<=4.*got \[2, 1, 5, 5, 32\]/],
      [[2, 4, 1, 5, 32], /media<=3.*got \[2, 4, 1, 5, 32\]/],
    ];
    for (const [shape, re] of cases) {
      const x = tf.zeros(shape);
      expect(() => m.forward(x)).toThrow(re);
      x.dispose();
    }
    m.dispose();
  });

  test('no tensor leaks after forward and gradient calls', () => {
    const m = new FlamingoPerceiverResampler(args);
    const x = tf.randomNormal([2, 2, 3, 5, 32]);
    const before = tf.memory().numTensors;
    tf.dispose(m.forward(x));
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(m.forward(x))) as tf.Scalar, m.parameters());
    // media 3 and frame 4 are never used by this input: their embedding rows get zero gradient
    const gFrames = grads[m.parameters()[1]!.name]!;
    expect(tf.tidy(() => tf.max(tf.abs(tf.slice(gFrames, [3, 0], [1, 32]))).dataSync()[0])).toBe(0);
    value.dispose();
    tf.dispose(Object.values(grads));
    tf.dispose(tf.grad((xx: tf.Tensor) => tf.sum(m.forward(xx)))(x));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });

  test('tfjs-layers save → load round trip gives identical outputs', async () => {
    const x = tf.randomNormal([2, 2, 3, 5, 32], 0, 1, 'float32', 4);
    const r = await saveLoadRoundTrip(new FlamingoPerceiverResampler(args), [[2, 3, 5, 32]], [x]);
    expect(r.topology).toContain('FlamingoPerceiverResampler');
    expect(r.a.shape).toEqual([2, 2, 6, 32]);
    expect(bits(r.b)).toEqual(bits(r.a));
    expect(r.leaked).toBe(0);
    r.dispose();
    x.dispose();
  });
});

describe("PerceiverResampler's names on FlamingoPerceiverResampler", () => {
  test('numQueries / numLayers / numHeads are the same sizes as numLatents / depth / heads', () => {
    const a = new FlamingoPerceiverResampler({ dim: 16, numQueries: 3, numLayers: 2, numHeads: 2, dimHead: 8 });
    expect([a.numLatents, a.depth, a.heads, a.numQueries, a.numLayers, a.numHeads]).toEqual([3, 2, 2, 3, 2, 2]);
    expect(a.getConfig()).toMatchObject({ numLatents: 3, depth: 2, heads: 2 }); // saved under the upstream names
    const b = new FlamingoPerceiverResampler({ dim: 16, numLatents: 3, depth: 2, heads: 2, dimHead: 8 });
    expect(a.stateDictShapes()).toEqual(b.stateDictShapes());
    b.dispose();
    const y = a.forward(tf.zeros([1, 5, 16]));
    expect(y.shape).toEqual([1, 1, 3, 16]);
    tf.dispose(y);
    a.dispose();
  });

  test('an upstream name and its alias with different values is an error', () => {
    expect(() => new FlamingoPerceiverResampler({ dim: 16, depth: 2, numLayers: 3 })).toThrow(/depth \(2\) and numLayers \(3\) name the same size/);
    expect(() => new FlamingoPerceiverResampler({ dim: 16, numLatents: 4, numQueries: 4, heads: 2, numHeads: 2, dimHead: 8, depth: 1 }).dispose()).not.toThrow();
  });
});
