import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { GatedCrossAttention, gatedCrossAttentionArgsFromConfig } from '@vlm/gated-xattn';
import { bits, goldenCase, maxDiff, params, saveLoadRoundTrip } from '../../../test-helpers';

describe('GatedCrossAttention (the design’s)', () => {
  test('state-dict keys are the PyTorch SeedGatedCrossAttention ones; the gate starts at 0', () => {
    const m = new GatedCrossAttention({ dim: 32, numHeads: 4 });
    expect(m.stateDictShapes()).toEqual({
      gate: [1],
      'cross_attn.in_proj_weight': [96, 32],
      'cross_attn.in_proj_bias': [96],
      'cross_attn.out_proj.weight': [32, 32],
      'cross_attn.out_proj.bias': [32],
      'norm.weight': [32],
      'norm.bias': [32],
    });
    expect(m.gateValue()).toBe(0);
    m.dispose();
  });

  test('with the gate at 0 the output equals the input bit for bit', () => {
    const m = new GatedCrossAttention({ dim: 32, numHeads: 4 });
    const x = tf.randomNormal([2, 7, 32], 0, 3, 'float32', 1);
    const v = tf.randomNormal([2, 8, 32], 0, 3, 'float32', 2);
    const y = m.forward(x, v);
    expect(bits(y)).toEqual(bits(x));
    m.gate.assign(tf.tensor1d([0.1]));
    const z = m.forward(x, v);
    expect(maxDiff(z, x)).toBeGreaterThan(1e-3);
    expect(m.gateValue()).toBeCloseTo(Math.tanh(0.1), 6);
    tf.dispose([x, v, y, z]);
    m.dispose();
  });

  test('matches the vendored PyTorch golden cases', () => {
    for (const name of ['seed_xattn_gate0', 'seed_xattn_gate0p5']) {
      const { sidecar, tensors } = goldenCase(name);
      const m = new GatedCrossAttention(gatedCrossAttentionArgsFromConfig(sidecar.config));
      m.loadStateDict(params(tensors));
      const out = m.forward(tensors['input.text_hidden']!, tensors['input.visual_tokens']!);
      expect(maxDiff(out, tensors['output.out']!)).toBeLessThan(1e-4);
      if (name === 'seed_xattn_gate0') expect(bits(out)).toEqual(bits(tensors['input.text_hidden']!));
      tf.dispose([out, ...Object.values(tensors)]);
      m.dispose();
    }
  });

  test('a key padding mask hides visual tokens', () => {
    const m = new GatedCrossAttention({ dim: 16, numHeads: 2 });
    m.gate.assign(tf.tensor1d([1]));
    const x = tf.randomNormal([1, 3, 16], 0, 1, 'float32', 5);
    const v = tf.randomNormal([1, 6, 16], 0, 1, 'float32', 6);
    const pad = tf.tensor2d([[0, 0, 0, 0, 1, 1]], undefined, 'bool');
    const a = m.forward(x, v, pad);
    const v4 = tf.slice(v, [0, 0, 0], [1, 4, 16]);
    const b = m.forward(x, v4);
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
    tf.dispose([x, v, pad, a, v4, b]);
    m.dispose();
  });

  test('wrong rank or width is an error that names both shapes', () => {
    const m = new GatedCrossAttention({ dim: 32, numHeads: 4 });
    const x = tf.zeros([2, 7, 32]);
    const bad = tf.zeros([2, 8, 24]);
    const r2 = tf.zeros([7, 32]);
    const mask = tf.zeros([2, 9], 'bool');
    const v = tf.zeros([2, 8, 32]);
    expect(() => m.forward(x, bad)).toThrow(/GatedCrossAttention visualTokens: expected shape \[batch=2, visualTokens, dim=32\], got \[2, 8, 24\]/);
    expect(() => m.forward(r2, v)).toThrow(/GatedCrossAttention textHidden: expected shape \[batch, textTokens, dim=32\], got \[7, 32\]/);
    expect(() => m.forward(x, v, mask)).toThrow(/keyPaddingMask: expected shape \[batch=2, visualTokens=8\], got \[2, 9\]/);
    tf.dispose([x, bad, r2, mask, v]);
    m.dispose();
  });

  test('no tensor leaks after forward and gradient calls', () => {
    const m = new GatedCrossAttention({ dim: 32, numHeads: 4 });
    const x = tf.randomNormal([2, 7, 32]);
    const v = tf.randomNormal([2, 8, 32]);
    const before = tf.memory().numTensors;
    tf.dispose(m.forward(x, v));
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(m.forward(x, v))) as tf.Scalar, m.parameters());
    // at gate 0 only the gate itself gets a gradient
    expect(tf.tidy(() => tf.abs(grads[m.gate.name]!).dataSync()[0])).toBeGreaterThan(0);
    value.dispose();
    tf.dispose(Object.values(grads));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, v]);
    m.dispose();
  });

  test('tfjs-layers save → load round trip gives identical outputs', async () => {
    const m = new GatedCrossAttention({ dim: 32, numHeads: 4 });
    m.gate.assign(tf.tensor1d([0.4]));
    const x = tf.randomNormal([2, 7, 32], 0, 1, 'float32', 1);
    const v = tf.randomNormal([2, 8, 32], 0, 1, 'float32', 2);
    const r = await saveLoadRoundTrip(m, [[7, 32], [8, 32]], [x, v]);
    expect(r.topology).toContain('GatedCrossAttention');
    expect(bits(r.b)).toEqual(bits(r.a));
    expect(maxDiff(r.a, x)).toBeGreaterThan(1e-3);
    expect(r.leaked).toBe(0);
    r.dispose();
    tf.dispose([x, v]);
  });
});
