import * as tf from '@tensorflow/tfjs-core';
import { expect, test } from 'vitest';
import { MultiHeadAttention, argsFromPyTorchKwargs, manualSeed, seededRandom } from '@vlm/core';

test('seededRandom: the same seed gives the same sequence in [0, 1); different seeds differ', () => {
  const a = Array.from({ length: 5 }, seededRandom(42));
  const b = Array.from({ length: 5 }, seededRandom(42));
  expect(a).toEqual(b);
  expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
  expect(Array.from({ length: 5 }, seededRandom(43))).not.toEqual(a);
  expect(() => seededRandom(Number.NaN)).toThrow(/expected a finite seed, got NaN/);
});

test('argsFromPyTorchKwargs renames, drops nulls and names unknown keys', () => {
  const names = { dim: 'dim', n_heads: 'numHeads', dim_head: 'dimHead' } as const;
  expect(argsFromPyTorchKwargs('t', { dim: 8, n_heads: 2, dim_head: null }, names)).toEqual({ dim: 8, numHeads: 2 });
  expect(() => argsFromPyTorchKwargs('myArgs', { dim: 8, heads: 2 }, names)).toThrow(/myArgs: unknown argument\(s\) heads; expected some of dim, n_heads, dim_head/);
});

test('manualSeed makes module initialisation reproducible, and null unseeds it', () => {
  const before = tf.memory().numTensors;
  const build = () => new MultiHeadAttention({ embedDim: 8, numHeads: 2 });
  const values = (m: MultiHeadAttention) => m.parameters().map((p) => Array.from(p.dataSync()));
  manualSeed(7);
  const a = build();
  manualSeed(7);
  const b = build();
  manualSeed(8);
  const c = build();
  manualSeed(null);
  const d = build();
  expect(values(b)).toEqual(values(a));
  expect(values(c)).not.toEqual(values(a));
  expect(values(d)).not.toEqual(values(a));
  for (const m of [a, b, c, d]) m.dispose();
  expect(tf.memory().numTensors).toBe(before);
});
