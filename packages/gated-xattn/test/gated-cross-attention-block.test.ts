import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { GatedCrossAttentionBlock, gatedCrossAttentionBlockArgsFromConfig, mediaAttentionMask, textTime } from '@vlm/gated-xattn';
import { bits, goldenCase, maxDiff, params, saveLoadRoundTrip } from '../../../test-helpers';

const args = { dim: 32, dimVisual: 24, dimHead: 8, heads: 4, ffMult: 4 };
// images at text positions [2, 6] (row 0) and [3, 5] (row 1), as in the golden cases
const locations = () => {
  const l = [[0, 0, 1, 0, 0, 0, 1, 0, 0], [0, 0, 0, 1, 0, 1, 0, 0, 0]];
  return tf.tensor2d(l, undefined, 'int32');
};
const firstImage = [2, 3];

describe('GatedCrossAttentionBlock (Flamingo)', () => {
  test('state-dict keys are OpenFlamingo’s; both gates start at 0', () => {
    const m = new GatedCrossAttentionBlock(args);
    expect(m.stateDictShapes()).toEqual({
      attn_gate: [1],
      ff_gate: [1],
      'attn.norm.weight': [32],
      'attn.norm.bias': [32],
      'attn.to_q.weight': [32, 32],
      'attn.to_kv.weight': [64, 24],
      'attn.to_out.weight': [32, 32],
      'ff.0.weight': [32],
      'ff.0.bias': [32],
      'ff.1.weight': [128, 32],
      'ff.3.weight': [32, 128],
    });
    expect(m.gateValues()).toEqual({ attn: 0, ff: 0 });
    m.dispose();
  });

  test('with both gates at 0 the output equals the input bit for bit', () => {
    const m = new GatedCrossAttentionBlock(args);
    const x = tf.randomNormal([2, 9, 32], 0, 3, 'float32', 1);
    const media = tf.randomNormal([2, 2, 6, 24], 0, 3, 'float32', 2);
    const loc = locations();
    for (const y of [m.forward(x, media, loc), m.forward(x, media)]) {
      expect(bits(y)).toEqual(bits(x));
      y.dispose();
    }
    m.attnGate.assign(tf.tensor1d([0.3]));
    const z = m.forward(x, media, loc);
    expect(maxDiff(z, x)).toBeGreaterThan(1e-3);
    tf.dispose([x, media, loc, z]);
    m.dispose();
  });

  test('matches the vendored PyTorch golden cases', () => {
    for (const name of ['flamingo_xattn_immediate', 'flamingo_xattn_all_previous', 'flamingo_xattn_gate0']) {
      const { sidecar, tensors } = goldenCase(name);
      const m = new GatedCrossAttentionBlock(gatedCrossAttentionBlockArgsFromConfig(sidecar.config));
      m.loadStateDict(params(tensors));
      const out = m.forward(tensors['input.x']!, tensors['input.media']!, tensors['input.media_locations']!);
      expect(maxDiff(out, tensors['output.out']!)).toBeLessThan(1e-4);
      if (name === 'flamingo_xattn_gate0') expect(bits(out)).toEqual(bits(tensors['input.x']!));
      tf.dispose([out, ...Object.values(tensors)]);
      m.dispose();
    }
  });

  test('tokens before the first image get exactly 0 cross-attention output, in both modes', () => {
    for (const onlyAttendImmediateMedia of [true, false]) {
      const m = new GatedCrossAttentionBlock({ ...args, onlyAttendImmediateMedia });
      m.attnGate.assign(tf.tensor1d([2]));
      const x = tf.randomNormal([2, 9, 32], 0, 1, 'float32', 3);
      const media = tf.randomNormal([2, 2, 6, 24], 0, 1, 'float32', 4);
      const loc = locations();
      const a = m.attn.forward(x, media, loc);
      const y = m.forward(x, media, loc); // ff gate 0: y = x + tanh(2)·a
      const rows = a.arraySync() as number[][][];
      rows.forEach((row, r) =>
        row.forEach((tok, i) => {
          if (i < firstImage[r]!) expect(tok.every((v) => Object.is(v, 0))).toBe(true);
          else expect(Math.max(...tok.map(Math.abs))).toBeGreaterThan(1e-4);
        }),
      );
      const xs = x.arraySync() as number[][][];
      const ys = y.arraySync() as number[][][];
      expect(ys[0]!.slice(0, 2)).toEqual(xs[0]!.slice(0, 2));
      expect(ys[1]!.slice(0, 3)).toEqual(xs[1]!.slice(0, 3));
      tf.dispose([x, media, loc, a, y]);
      m.dispose();
    }
  });

  test('a token attends to the latest image (immediate) or all images so far (all previous)', () => {
    for (const immediate of [true, false]) {
      const m = new GatedCrossAttentionBlock({ ...args, onlyAttendImmediateMedia: immediate });
      const x = tf.randomNormal([2, 9, 32], 0, 1, 'float32', 5);
      const media = tf.randomNormal([2, 2, 6, 24], 0, 1, 'float32', 6);
      const loc = locations();
      const a = m.attn.forward(x, media, loc);
      const times = textTime(loc).arraySync() as number[][];
      for (let r = 0; r < 2; r++) {
        for (let i = 0; i < 9; i++) {
          const t = times[r]![i]!;
          if (t === 0) continue;
          const expected = tf.tidy(() => {
            const tok = tf.slice(x, [r, i, 0], [1, 1, 32]);
            const seen = immediate ? tf.slice(media, [r, t - 1, 0, 0], [1, 1, 6, 24]) : tf.slice(media, [r, 0, 0, 0], [1, t, 6, 24]);
            return m.attn.forward(tok, seen); // unmasked: every token it is given
          });
          const got = tf.slice(a, [r, i, 0], [1, 1, 32]);
          expect(maxDiff(got, expected)).toBeLessThan(1e-5);
          tf.dispose([expected, got]);
        }
      }
      tf.dispose([x, media, loc, a]);
      m.dispose();
    }
  });

  test('use_cached_media: every token attends to the last image of the prompt', () => {
    const m = new GatedCrossAttentionBlock(args);
    const x = tf.randomNormal([2, 3, 32], 0, 1, 'float32', 7);
    const media = tf.randomNormal([2, 2, 6, 24], 0, 1, 'float32', 8);
    const loc = tf.tensor2d([[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]], undefined, 'int32'); // the prompt's
    const cached = m.attn.forwardWithOptions(x, media, { mediaLocations: loc, useCachedMedia: true });
    const last0 = m.attn.forward(tf.slice(x, [0, 0, 0], [1, 3, 32]), tf.slice(media, [0, 1, 0, 0], [1, 1, 6, 24]));
    const last1 = m.attn.forward(tf.slice(x, [1, 0, 0], [1, 3, 32]), tf.slice(media, [1, 0, 0, 0], [1, 1, 6, 24]));
    expect(maxDiff(cached, tf.concat([last0, last1]))).toBeLessThan(1e-5);
    // a precomputed mask (as FlamingoLM shares one per pass) gives the same
    const time = textTime(loc, { useCachedMedia: true, length: 3 });
    const mask = mediaAttentionMask(time, media.shape, true);
    const viaMask = m.attn.forwardWithOptions(x, media, { mask });
    expect(bits(viaMask)).toEqual(bits(cached));
    tf.dispose([x, media, loc, cached, last0, last1, time, mask.allowed, mask.hasMedia, viaMask]);
    m.dispose();
  });

  test('errors name the expected and actual shapes', () => {
    const m = new GatedCrossAttentionBlock(args);
    const x = tf.zeros([2, 9, 32]);
    const media = tf.zeros([2, 2, 6, 24]);
    const one = tf.zeros([2, 1, 6, 24]);
    const loc = locations();
    const short = tf.zeros([2, 8], 'int32');
    const r3 = tf.zeros([2, 6, 24]);
    const wide = tf.zeros([2, 9, 16]);
    expect(() => m.forward(x, one, loc)).toThrow(/names 2 image\(s\) in row 0 .*media has shape \[2, 1, 6, 24\]: expected at most 1/);
    expect(() => m.forward(x, media, short)).toThrow(/mediaLocations: expected shape \[batch=2, tokens=9\], got \[2, 8\]/);
    expect(() => m.forward(x, r3, loc)).toThrow(/media: expected shape \[batch=2, T, m, dimVisual=24\], got \[2, 6, 24\]/);
    expect(() => m.forward(wide, media, loc)).toThrow(/GatedCrossAttentionBlock x: expected shape \[batch, tokens, dim=32\], got \[2, 9, 16\]/);
    const badMask = { allowed: tf.zeros([2, 1, 9, 6], 'bool') as tf.Tensor4D, hasMedia: tf.zeros([2, 9, 1], 'bool') as tf.Tensor3D };
    expect(() => m.forwardWithOptions(x, media, { mask: badMask })).toThrow(/mask.allowed: expected shape \[batch=2, 1=1, tokens=9, T·m=12\], got \[2, 1, 9, 6\]/);
    tf.dispose([x, media, one, loc, short, r3, wide, badMask.allowed, badMask.hasMedia]);
    m.dispose();
  });

  test('no tensor leaks after forward and gradient calls', () => {
    const m = new GatedCrossAttentionBlock(args);
    m.attnGate.assign(tf.tensor1d([0.5]));
    m.ffGate.assign(tf.tensor1d([0.5]));
    const x = tf.randomNormal([2, 9, 32]);
    const media = tf.randomNormal([2, 2, 6, 24]);
    const loc = locations();
    const before = tf.memory().numTensors;
    tf.dispose(m.forward(x, media, loc));
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(m.forward(x, media, loc))) as tf.Scalar, m.parameters());
    expect(Object.keys(grads).length).toBe(m.parameters().length);
    value.dispose();
    tf.dispose(Object.values(grads));
    tf.dispose(tf.grads((xx: tf.Tensor, mm: tf.Tensor) => tf.sum(m.forward(xx, mm, loc)))([x, media]));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, media, loc]);
    m.dispose();
  });

  test('tfjs-layers save → load round trip gives identical outputs', async () => {
    const m = new GatedCrossAttentionBlock(args);
    m.attnGate.assign(tf.tensor1d([0.7]));
    m.ffGate.assign(tf.tensor1d([0.5]));
    const x = tf.randomNormal([2, 9, 32], 0, 1, 'float32', 1);
    const media = tf.randomNormal([2, 2, 6, 24], 0, 1, 'float32', 2);
    const loc = tf.cast(locations(), 'float32'); // a tfjs-layers input is float32
    const r = await saveLoadRoundTrip(m, [[9, 32], [2, 6, 24], [9]], [x, media, loc]);
    expect(r.topology).toContain('GatedCrossAttentionBlock');
    expect(bits(r.b)).toEqual(bits(r.a));
    expect(maxDiff(r.a, x)).toBeGreaterThan(1e-3);
    expect(r.leaked).toBe(0);
    r.dispose();
    tf.dispose([x, media, loc]);
  });
});
