import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { QFORMER_MODES, qformerAdditiveMask, qformerAllowedMask, type QFormerMode } from '@vlm/qformer';

// qformer_allowed_mask of the reference modules.py, written out in plain JS.
function reference(mode: QFormerMode, b: number, Q: number, pad: number[][] | undefined, T: number): boolean[][][] {
  const p = pad ?? Array.from({ length: b }, () => new Array<number>(T).fill(1));
  if (mode === 'query') return Array.from({ length: b }, () => Array.from({ length: Q }, () => new Array<boolean>(Q).fill(true)));
  if (mode === 'text') return p.map((row) => Array.from({ length: T }, () => row.map((v) => v === 1)));
  const L = Q + T;
  return p.map((row) => {
    const keysOk = [...new Array<boolean>(Q).fill(true), ...row.map((v) => v === 1)];
    return Array.from({ length: L }, (_, i) =>
      Array.from({ length: L }, (_, j) => {
        let ok: boolean;
        if (mode === 'itm') ok = true;
        else if (mode === 'itc') ok = (i < Q && j < Q) || (i >= Q && j >= Q);
        else ok = i < Q ? j < Q : j < Q || j <= i; // itg
        return ok && keysOk[j]!;
      }),
    );
  });
}

describe('qformerAllowedMask', () => {
  const pad = [
    [1, 1, 1, 1, 1],
    [1, 1, 1, 0, 0],
  ];
  for (const mode of QFORMER_MODES) {
    test(`mode '${mode}' equals the reference matrix (padding masks keys only)`, () => {
      const before = tf.memory().numTensors;
      const m = tf.tensor2d(pad, undefined, 'int32');
      const allowed = qformerAllowedMask(mode, 2, 3, m, 5);
      expect(allowed.dtype).toBe('bool');
      const got = (allowed.arraySync() as unknown as Array<Array<Array<number | boolean>>>).map((r) => r.map((c) => c.map(Boolean)));
      expect(got).toEqual(reference(mode, 2, 3, pad, 5));
      const add = qformerAdditiveMask(allowed);
      const L = allowed.shape[1]!;
      expect(add.shape).toEqual([2, 1, L, L]);
      const values = new Set(Array.from(add.dataSync()));
      expect([...values].every((v) => v === 0 || v === -10000)).toBe(true);
      tf.dispose([m, allowed, add]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  test('a padded text row still sees every query and every real token in mode itm, never a padded key', () => {
    const m = tf.tensor2d([[1, 0]], undefined, 'int32');
    const a = qformerAllowedMask('itm', 1, 2, m).arraySync() as unknown as boolean[][][];
    expect(a[0]!.map((r) => r.map(Boolean))).toEqual(Array.from({ length: 4 }, () => [true, true, true, false]));
    m.dispose();
  });

  test('an unknown mode and a mask of the wrong batch are clear errors', () => {
    expect(() => qformerAllowedMask('nope' as QFormerMode, 1, 2)).toThrow(/expected one of query, text, itm, itg, itc, got 'nope'/);
    const m = tf.ones([3, 4], 'int32');
    expect(() => qformerAllowedMask('itm', 2, 2, m)).toThrow(/attentionMask: expected shape \[batch=2, text\], got \[3, 4\]/);
    m.dispose();
  });
});
