import { expect, test } from 'vitest';
import { argsFromPyTorchKwargs, seededRandom } from '@vlm/core';

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
