import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { Embedding, IGNORE_INDEX, checkTokenIds, crossEntropy, readbackChecksEnabled, withoutReadbackChecks } from '@vlm/core';

// Counts synchronous reads (dataSync / arraySync go through the engine's readSync; data() / array() do not).
const syncReads = () => vi.spyOn(tf.engine(), 'readSync');
const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

afterEach(() => vi.restoreAllMocks());

describe('withoutReadbackChecks', () => {
  test('turns the checks off for the synchronous run only, nested scopes included, and rejects async functions', () => {
    expect(readbackChecksEnabled()).toBe(true);
    const inner = withoutReadbackChecks(() => [readbackChecksEnabled(), withoutReadbackChecks(() => readbackChecksEnabled()), readbackChecksEnabled()]);
    expect(inner).toEqual([false, false, false]);
    expect(readbackChecksEnabled()).toBe(true);
    expect(() =>
      withoutReadbackChecks(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(readbackChecksEnabled()).toBe(true);
    expect(() => withoutReadbackChecks(async () => 1)).toThrow(/expected a synchronous function/);
    expect(readbackChecksEnabled()).toBe(true);
  });

  test("Embedding reads its ids back to check them, except inside the scope (same output either way)", () => {
    const emb = new Embedding({ numEmbeddings: 5, embeddingDim: 3 });
    const ids = tf.tensor2d([[0, 4], [2, 1]], undefined, 'int32');
    const before = tf.memory().numTensors;
    const reads = syncReads();
    const checked = emb.forward(ids);
    const checkedReads = reads.mock.calls.length;
    reads.mockClear();
    const unchecked = withoutReadbackChecks(() => emb.forward(ids));
    expect(reads.mock.calls.length).toBe(0);
    expect(checkedReads).toBeGreaterThan(0);
    reads.mockRestore();
    expect(bits(unchecked)).toEqual(bits(checked));
    expect(() => emb.forward(tf.tensor1d([5], 'int32'))).toThrow(/Embedding ids must be in \[0, 5\), got values in \[5, 5\]/);
    tf.dispose([checked, unchecked]);
    expect(tf.memory().numTensors).toBe(before + 1); // the [5] tensor of the failed call above
    ids.dispose();
    emb.dispose();
  });

  test('crossEntropy: tensor labels give the bits of number labels; the label check reads back only outside the scope', () => {
    const logits = tf.tensor2d([[2, 0, 1], [0, 2, 1], [1, 1, 1], [0.5, -1, 3]]);
    const numbers = [0, IGNORE_INDEX, 2, 1];
    const labels = tf.tensor1d(numbers, 'int32');
    const before = tf.memory().numTensors;
    const a = crossEntropy(logits, numbers);
    const b = crossEntropy(logits, labels);
    const reads = syncReads();
    const c = withoutReadbackChecks(() => crossEntropy(logits, labels, { labelSmoothing: 0.1 }));
    expect(reads.mock.calls.length).toBe(0);
    reads.mockRestore();
    const d = crossEntropy(logits, numbers, { labelSmoothing: 0.1 });
    expect(bits(b)).toEqual(bits(a));
    expect(bits(c)).toEqual(bits(d));
    // -log softmax by hand, mean over the 3 labelled rows
    const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
    const expected = ((lse([2, 0, 1]) - 2) + (lse([1, 1, 1]) - 1) + (lse([0.5, -1, 3]) + 1)) / 3;
    expect(a.dataSync()[0]).toBeCloseTo(expected, 5);
    tf.dispose([a, b, c, d]);
    expect(tf.memory().numTensors).toBe(before);
    const bad = tf.tensor1d([0, 3, 1, 1], 'int32');
    expect(() => crossEntropy(logits, bad)).toThrow(/labels must be in \[0, 3\) or -100, got 3/);
    expect(() => crossEntropy(logits, tf.tensor1d([0, 1], 'int32'))).toThrow(/expected 4 labels \(one per logits row\), got 2/);
    tf.dispose([logits, labels, bad]);
  });
});

describe('checkTokenIds', () => {
  test('accepts ids in [0, vocab), flat or as rows; names the range or the fraction found otherwise', () => {
    expect(() => checkTokenIds([[5, 9], [1, 0]], 10, 'prompt ids')).not.toThrow();
    expect(() => checkTokenIds(new Int32Array([0, 9]), 10)).not.toThrow();
    expect(() => checkTokenIds([], 10)).not.toThrow();
    expect(() => checkTokenIds([[5, 12]], 10, 'prompt ids')).toThrow('prompt ids must be in [0, 10), got values in [5, 12]');
    expect(() => checkTokenIds([-1, 3], 10)).toThrow('Embedding ids must be in [0, 10), got values in [-1, 3]');
    expect(() => checkTokenIds([[1.5]], 10, 'ids')).toThrow('ids must be integers, got 1.5');
  });
});
