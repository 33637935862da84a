import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { Linear, installFastWasmKernels, linear, linear2d, matMul2d, matMulTransposedB, microBatchGrads, scaledDotProductAttention } from '@vlm/core';
import { onSlowMatMulWasm } from '../src/wasm-kernels';

const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Runs `f` on the wasm backend (the kernels under test are wasm's), then restores the backend. */
async function onWasmBackend(f: () => void) {
  const prev = tf.getBackend();
  await tf.setBackend('wasm');
  try {
    f();
  } finally {
    await tf.setBackend(prev);
  }
}

describe('attention head by head (the wasm formulation) equals the batched one', () => {
  test.each([
    ['no mask', {}],
    ['bool mask', { allowed: true }],
    ['additive mask', { additive: true }],
  ])('%s: outputs and gradients of q, k, v within 1e-6', (_, m: { allowed?: boolean; additive?: boolean }) => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const [b, n, s, heads, d, dv] = [2, 5, 7, 3, 4, 6];
      const q = rand([b, n, heads * d], 1);
      const k = rand([b, s, heads * d], 2);
      const v = rand([b, s, heads * dv], 3);
      const w = rand([b, n, heads * dv], 4);
      const allowed = m.allowed ? tf.greater(rand([b, 1, n, s], 5), -0.5) : undefined;
      const additiveMask = m.additive ? tf.mul(rand([b, 1, 1, s], 6), 3) : undefined;
      const run = (perHead: boolean) => {
        const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(scaledDotProductAttention(qq, kk, vv, { heads, allowed, additiveMask, perHead }), w));
        const out = scaledDotProductAttention(q, k, v, { heads, allowed, additiveMask, perHead });
        return [out, ...tf.grads(f)([q, k, v])];
      };
      const batched = run(false);
      const perHead = run(true);
      batched.forEach((t, i) => expect(maxAbsDiff(perHead[i]!, t)).toBeLessThanOrEqual(1e-6 * Math.max(1, tf.max(tf.abs(t)).dataSync()[0]!)));
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('matMul2d and linear: plain-matMul gradients', () => {
  test('gradients equal the stock matMul gradients', () => {
    tf.tidy(() => {
      const a = rand([5, 3], 1);
      const b = rand([3, 4], 2);
      const bias = rand([4], 3);
      const x = rand([2, 5, 3], 4);
      const ours = tf.grads((aa: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(matMul2d(aa, bb))))([a, b]);
      const stock = tf.grads((aa: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(tf.matMul(aa as tf.Tensor2D, bb as tf.Tensor2D))))([a, b]);
      ours.forEach((g, i) => expect(maxAbsDiff(g, stock[i]!)).toBeLessThanOrEqual(1e-5));
      const f = (useOurs: boolean) => (xx: tf.Tensor, k: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.square(useOurs ? linear(xx, k, bb) : tf.add(tf.matMul(tf.reshape(xx, [-1, 3]), k as tf.Tensor2D), bb)));
      const lo = tf.grads(f(true))([x, b, bias]);
      const ls = tf.grads(f(false))([x, b, bias]);
      lo.forEach((g, i) => expect(maxAbsDiff(g, ls[i]!)).toBeLessThanOrEqual(1e-4));
    });
  });

  test('a kernel gradient through a constant input does not compute dX', async () => {
    const k = tf.variable(rand([3, 4], 1));
    const x = rand([6, 3], 2);
    let grad: tf.Tensor | undefined;
    const profile = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(linear(x, k, null)), [k]);
      value.dispose();
      grad = grads[k.name];
    });
    // No kernel produced an x-shaped tensor: dX = dy·Kᵀ was never computed.
    const products = profile.kernels.filter((kr) => ['BatchMatMul', '_FusedMatMul', 'Transpose'].includes(kr.name));
    expect(products.filter((kr) => kr.outputShapes.some((sh) => sh?.join() === '6,3'))).toEqual([]);
    expect(products.length).toBeGreaterThan(0);
    const expected = tf.tidy(() => tf.matMul(tf.transpose(x), tf.ones([6, 4])));
    expect(maxAbsDiff(grad!, expected)).toBeLessThanOrEqual(1e-5);
    tf.dispose([grad!, expected, x, k]);
  });
});

describe('matMulTransposedB (tied output layers): no transpose flag on wasm, no copy of the table', () => {
  test('equals the flagged matMul, with the stock gradients, on the current backend and on wasm', async () => {
    const check = () =>
      tf.tidy(() => {
        const h = rand([6, 16], 1);
        const table = rand([50, 16], 2);
        expect(maxAbsDiff(matMulTransposedB(h, table), tf.matMul(h, table, false, true))).toBeLessThanOrEqual(1e-5);
        const row = rand([1, 16], 3); // a decode step
        expect(maxAbsDiff(matMulTransposedB(row, table), tf.matMul(row, table, false, true))).toBeLessThanOrEqual(1e-5);
        const f = (mm: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(mm(a, b)));
        const ours = tf.grads(f(matMulTransposedB))([h, table]);
        const stock = tf.grads(f((a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true)))([h, table]);
        ours.forEach((g, i) => expect(maxAbsDiff(g, stock[i]!)).toBeLessThanOrEqual(1e-4));
      });
    const before = tf.memory().numTensors;
    check();
    await onWasmBackend(check);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('on wasm the table goes into matMul as is: no Transpose of it, no transpose flag (the 12× slower path)', async () => {
    await onWasmBackend(() => {
      const h = rand([8, 32], 1);
      const table = rand([300, 32], 2);
      // The kernels of one call, with their attributes (tf.profile does not report attributes).
      const seen: Array<{ name: string; inputShapes: number[][]; attrs: Record<string, unknown> }> = [];
      const engine = tf.engine() as unknown as { runKernel: (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) => tf.Tensor };
      const runKernel = engine.runKernel.bind(engine);
      engine.runKernel = (name, inputs, attrs) => {
        seen.push({ name, inputShapes: Object.values(inputs).map((t) => t.shape), attrs });
        return runKernel(name, inputs, attrs);
      };
      let out: tf.Tensor;
      const slow = onSlowMatMulWasm();
      try {
        out = matMulTransposedB(h, table);
      } finally {
        engine.runKernel = runKernel;
      }
      const products = seen.filter((k) => k.name === 'BatchMatMul' || k.name === '_FusedMatMul');
      expect(products.length).toBe(1);
      if (slow) {
        expect(products[0]!.inputShapes[0]).toEqual([300, 32]);
        expect(products[0]!.attrs).toMatchObject({ transposeA: false, transposeB: false });
      } else {
        // A fast matMul on wasm (@vlm/native-matmul, VLM_NATIVE=1) takes the flag at no cost: the plain call.
        expect(products[0]!.inputShapes).toEqual([[8, 32], [300, 32]]);
        expect(products[0]!.attrs).toMatchObject({ transposeA: false, transposeB: true });
      }
      expect(seen.filter((k) => k.name === 'Transpose' && k.inputShapes[0]!.join() === '300,32')).toEqual([]);
      expect(out!.shape).toEqual([8, 300]);
      tf.dispose([h, table, out!]);
    });
  });
});

describe('linear2d on wasm: a kernel over 64 MB in column blocks', () => {
  test('equals one matMul, and its gradients are the usual ones', async () => {
    await onWasmBackend(() => {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const [m, inF, outF] = [3, 4096, 4099]; // 16.8M elements, an uneven last block
        const x = rand([m, inF], 1);
        const k = tf.mul(rand([inF, outF], 2), 0.02);
        const b = rand([outF], 3);
        const ours = linear2d(x, k, b);
        const ref = tf.add(tf.matMul(x as tf.Tensor2D, k as tf.Tensor2D), b);
        expect(maxAbsDiff(ours, ref)).toBeLessThanOrEqual(1e-4); // values ~1, sums of 4096 terms
        const w = rand([m, outF], 4);
        const [dx, db] = tf.grads((xx: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear2d(xx, k, bb), w)))([x, b]);
        expect(maxAbsDiff(dx!, tf.matMul(w as tf.Tensor2D, k as tf.Tensor2D, false, true))).toBeLessThanOrEqual(1e-4);
        expect(maxAbsDiff(db!, tf.sum(w, 0))).toBe(0);
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

describe('fast wasm Identity / Slice / Unpack / SplitV kernels', () => {
  test('equal the reference slicing on every layout, bit for bit, and leak nothing', async () => {
    await onWasmBackend(() => {
      installFastWasmKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const x = rand([3, 4, 5, 6], 1);
        const xa = x.arraySync() as number[][][][];
        const ref = (b: number[], s: number[]) =>
          xa.slice(b[0], b[0]! + s[0]!).map((p) => p.slice(b[1], b[1]! + s[1]!).map((r) => r.slice(b[2], b[2]! + s[2]!).map((c) => c.slice(b[3], b[3]! + s[3]!))));
        for (const [b, s] of [
          [[0, 0, 0, 0], [3, 4, 5, 6]],
          [[1, 0, 0, 0], [2, 4, 5, 6]],
          [[1, 2, 0, 0], [1, 2, 5, 6]],
          [[0, 1, 2, 3], [3, 2, 3, 2]],
          [[2, 3, 4, 5], [1, 1, 1, 1]],
        ] as Array<[number[], number[]]>) {
          expect(tf.slice(x, b, s).arraySync()).toEqual(ref(b, s));
        }
        for (const axis of [0, 1, 2, 3]) {
          const parts = tf.unstack(x, axis);
          parts.forEach((p, i) => expect(p.arraySync()).toEqual(tf.squeeze(tf.slice(x, x.shape.map((_, j) => (j === axis ? i : 0)), x.shape.map((d, j) => (j === axis ? 1 : d))), [axis]).arraySync()));
          const sizes = [1, x.shape[axis]! - 1];
          const split = tf.split(x, sizes, axis);
          expect(split[1]!.arraySync()).toEqual(tf.slice(x, x.shape.map((_, j) => (j === axis ? 1 : 0)), x.shape.map((d, j) => (j === axis ? d - 1 : d))).arraySync());
        }
        expect(tf.slice(x, [0, 0, 1, 0], [3, 4, 0, 6]).shape).toEqual([3, 4, 0, 6]);
        // Identity shares the data: a clone outlives its source and reads the same values.
        const src = rand([3, 4], 7);
        const copy = tf.clone(src);
        const values = Array.from(src.dataSync());
        src.dispose();
        expect(Array.from(copy.dataSync())).toEqual(values);
        const ints = tf.tensor2d([[1, 2, 3], [4, 5, 6]], undefined, 'int32');
        expect(tf.unstack(ints, 1).map((t) => t.arraySync())).toEqual([[1, 4], [2, 5], [3, 6]]);
        const bools = tf.tensor2d([[true, false], [false, true]], undefined, 'bool');
        expect(tf.split(bools, 2, 0).map((t) => Array.from(t.dataSync()))).toEqual([[1, 0], [0, 1]]);
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

describe('fast wasm Tile kernel', () => {
  // Reference: out[i] = x[i mod shape], per element, in JS.
  const tileRef = (x: tf.Tensor, reps: number[]) => {
    const v = x.dataSync();
    const out = x.shape.map((d, i) => d * reps[i]!);
    const n = out.reduce((a, b) => a * b, 1);
    const res = new Array<number>(n);
    for (let o = 0; o < n; o++) {
      let rest = o, at = 0, stride = 1;
      for (let d = out.length - 1; d >= 0; d--) {
        const c = rest % out[d]!;
        rest = (rest - c) / out[d]!;
        at += (c % x.shape[d]!) * stride;
        stride *= x.shape[d]!;
      }
      res[o] = v[at]!;
    }
    return res;
  };
  test('equals the per-element definition on every dtype, rank and repetition pattern, and leaks nothing', async () => {
    await onWasmBackend(() => {
      installFastWasmKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const cases: Array<[number[], number[]]> = [
          [[5], [3]],
          [[1, 4], [3, 1]],
          [[2, 3], [2, 3]],
          [[2, 1, 3], [1, 5, 1]],
          [[1, 2, 1, 3], [4, 1, 7, 2]],
          [[3, 4, 5, 6], [1, 1, 1, 1]],
          [[2, 3, 1, 1, 2], [1, 2, 3, 2, 1]],
          [[2, 3], [0, 2]],
        ];
        for (const [shape, reps] of cases) {
          const x = rand(shape, 3);
          const tiled = tf.tile(x, reps);
          expect(tiled.shape).toEqual(shape.map((d, i) => d * reps[i]!));
          expect(Array.from(tiled.dataSync())).toEqual(tileRef(x, reps));
          const ints = tf.cast(tf.mul(x, 10), 'int32');
          expect(Array.from(tf.tile(ints, reps).dataSync())).toEqual(tileRef(ints, reps));
          const bools = tf.greater(x, 0);
          expect(Array.from(tf.tile(bools, reps).dataSync())).toEqual(tileRef(bools, reps));
        }
        // broadcastTo runs Tile: an attention mask [b, 1, 1, s] to [b, h, n, s].
        const mask = tf.greater(rand([2, 1, 1, 7], 4), 0);
        expect(Array.from(tf.broadcastTo(mask, [2, 3, 4, 7]).dataSync())).toEqual(tileRef(mask, [1, 3, 4, 1]));
        expect(tf.tile(tf.scalar(2), []).arraySync()).toBe(2);
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

describe('fast wasm GatherV2 kernel', () => {
  const cases: Array<{ shape: number[]; indices: number[][] | number[]; axis: number; batchDims?: number }> = [
    { shape: [64, 256], indices: [3, 0, 63, 3, 17], axis: 0 }, // an embedding lookup: runs of 256 (≥ 64: copied with set)
    { shape: [40, 6, 5], indices: [[39, 1], [1, 0]], axis: 0 }, // 2-D indices, runs of 30
    { shape: [4, 7, 5], indices: [6, 0, 6], axis: 1 },
    { shape: [4, 7, 5], indices: [4, 0], axis: -1 }, // runs of one element
    { shape: [3, 5, 130], indices: [[4, 0], [2, 2], [1, 3]], axis: 1, batchDims: 1 },
    { shape: [5, 3], indices: [], axis: 0 },
  ];
  test('equals the cpu backend on every layout, dtype and batchDims, bit for bit, and leaks nothing', async () => {
    const prev = tf.getBackend();
    await tf.setBackend('cpu');
    const expected = cases.map(({ shape, indices, axis, batchDims }) =>
      tf.tidy(() => {
        const x = rand(shape, 11);
        const ids = tf.tensor(indices, undefined, 'int32');
        return [x, tf.cast(tf.mul(x, 10), 'int32'), tf.greater(x, 0)].map((t) => ({ data: Array.from(t.dataSync()), out: tf.gather(t, ids, axis, batchDims) }));
      }).map(({ data, out }) => ({ data, shape: out.shape, values: Array.from(out.dataSync()), dtype: out.dtype })),
    );
    await tf.setBackend(prev);
    await onWasmBackend(() => {
      installFastWasmKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        cases.forEach(({ shape, indices, axis, batchDims }, c) => {
          const ids = tf.tensor(indices, undefined, 'int32');
          for (const e of expected[c]!) {
            const out = tf.gather(tf.tensor(e.data, shape, e.dtype), ids, axis, batchDims);
            expect(out.shape, `case ${c}`).toEqual(e.shape);
            expect(out.dtype).toBe(e.dtype);
            expect(Array.from(out.dataSync()), `case ${c} ${e.dtype}`).toEqual(e.values);
          }
        });
        const table = rand([5, 3], 2);
        expect(() => tf.gather(table, tf.tensor1d([0, 5], 'int32'))).toThrow('GatherV2: the index value 5 is not in [0, 4]');
        expect(() => tf.gather(table, tf.tensor1d([-1], 'int32'))).toThrow('GatherV2: the index value -1 is not in [0, 4]');
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

describe('microBatchGrads', () => {
  test('equals the full-batch gradients of a summed loss, and leaks nothing', () => {
    const fc = new Linear({ inFeatures: 4, outFeatures: 3 });
    const x = rand([5, 2, 4], 1);
    const w = rand([5, 2, 3], 2);
    const before = tf.memory().numTensors;
    const loss = ([xx, ww]: tf.Tensor[]) => tf.sum(tf.mul(tf.tanh(fc.forward(xx!)), ww!)) as tf.Scalar;
    const full = tf.variableGrads(() => loss([x, w]), fc.parameters());
    for (const mb of [1, 2, 5, 8]) {
      const part = microBatchGrads(loss, [x, w], mb, fc.parameters());
      expect(Math.abs(part.value.dataSync()[0]! - full.value.dataSync()[0]!)).toBeLessThanOrEqual(1e-5);
      for (const [k, g] of Object.entries(full.grads)) expect(maxAbsDiff(part.grads[k]!, g)).toBeLessThanOrEqual(1e-5);
      tf.dispose([part.value, ...Object.values(part.grads)]);
    }
    tf.dispose([full.value, ...Object.values(full.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => microBatchGrads(loss, [x, tf.zeros([4, 2, 3])], 2)).toThrow(/same batch/);
    tf.dispose([x, w]);
    fc.dispose();
  });
});
