// The native kernels against the stock ones, on the backend VLM_BACKEND selects (wasm or cpu).
// The addon is built when the package is installed; where it is not, this suite fails unless
// VLM_NATIVE_OPTIONAL=1 (then it is skipped).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { disableNativeMatMul, enableNativeMatMul, nativeMatMulAvailable } from '@vlm/native-matmul';
import {
  GELU_GRAD_KERNEL, GELU_KERNEL, GELU_TANH_GRAD_KERNEL, GELU_TANH_KERNEL, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL, LAYER_NORM_PARAM_GRAD_KERNEL, LayerNorm, gelu,
} from '@vlm/core';
// Internal to @vlm/core (the same module instance as the '@vlm/core' alias imports): what
// setFastMatMulBackend switches.
import { onSlowMatMulWasm } from '../../core/src/wasm-kernels';

const available = nativeMatMulAvailable();
const optional = process.env.VLM_NATIVE_OPTIONAL === '1';
const activeBackend = process.env.VLM_BACKEND ?? 'cpu';
const KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;
const BACKENDS = ['wasm', 'cpu'] as const;

test.skipIf(optional && !available)('the native addon is built and loads (VLM_NATIVE_OPTIONAL=1 skips the suite where it is not)', () => {
  expect(
    available,
    '@vlm/native-matmul: build/Release/vlm_matmul.node is missing or does not load; run `pnpm --filter @vlm/native-matmul build:native`',
  ).toBe(true);
});

const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
const maxAbs = (t: tf.Tensor) => tf.tidy(() => (t.size === 0 ? 0 : tf.max(tf.abs(t)).dataSync()[0]!));

/** `actual` has `expected`'s shape and dtype, and its values within `rel` of max |expected|. */
function expectClose(actual: tf.Tensor, expected: tf.Tensor, rel = 1e-5, what = '') {
  expect(actual.shape, what).toEqual(expected.shape);
  expect(actual.dtype, what).toBe(expected.dtype);
  const diff = tf.tidy(() => (actual.size === 0 ? 0 : tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]!));
  expect(diff, what).toBeLessThanOrEqual(rel * maxAbs(expected));
}

/** `f` run on the stock kernels; the native ones are back (default options) afterwards. */
function stock<T>(f: () => T): T {
  disableNativeMatMul();
  try {
    return f();
  } finally {
    enableNativeMatMul();
  }
}

/** What `f` gives: its values, or the message it throws. */
function outcome(f: () => tf.Tensor): { shape: number[]; dtype: string; values: number[] } | { error: string } {
  try {
    return tf.tidy(() => {
      const t = f();
      return { shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) };
    });
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The product with any batch broadcasting, one 2-D product (stock kernels) per output matrix. */
function referenceMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return stock(() =>
    tf.tidy(() => {
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
      const flat = (t: tf.Tensor) => tf.unstack(tf.reshape(tf.broadcastTo(t, [...outer, ...t.shape.slice(-2)]), [-1, ...t.shape.slice(-2)]));
      const as = flat(a), bs = flat(b);
      const out = tf.stack(as.map((x, i) => tf.matMul(x as tf.Tensor2D, bs[i] as tf.Tensor2D)));
      return tf.reshape(out, [...outer, a.shape[a.rank - 2]!, b.shape[b.rank - 1]!]);
    }),
  );
}

describe.runIf(available)(`native matMul kernels on the ${activeBackend} backend`, () => {
  const original = new Map<string, tf.KernelConfig>(); // `${backend}/${kernel}` → the stock kernel
  let tensorsBefore = 0;

  beforeAll(() => {
    expect(tf.getBackend()).toBe(activeBackend);
    disableNativeMatMul(); // start from the stock kernels (the test setup enables native with VLM_NATIVE=1)
    for (const backend of BACKENDS) for (const name of KERNELS) original.set(`${backend}/${name}`, tf.getKernel(name, backend)!);
    expect([...original.values()].every(Boolean)).toBe(true);
  });
  beforeEach(() => {
    enableNativeMatMul();
    tensorsBefore = tf.memory().numTensors;
  });
  afterEach(() => {
    expect(tf.memory().numTensors, 'tensors leaked by the test').toBe(tensorsBefore);
  });
  afterAll(() => {
    disableNativeMatMul();
    for (const [key, config] of original) {
      const [backend, name] = key.split('/') as [string, string];
      expect(tf.getKernel(name, backend)!.kernelFunc).toBe(config.kernelFunc);
    }
  });

  describe('2-D products', () => {
    const sizes = [1, 13, 37].flatMap((m) => [1, 33, 71].flatMap((n) => [1, 5, 413].map((k) => [m, n, k] as const)));
    test.each([
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ])('transposeA=%s transposeB=%s, m ∈ {1,13,37} × n ∈ {1,33,71} × k ∈ {1,5,413}: equal to the stock kernel', (tA, tB) => {
      tf.tidy(() => {
        for (const [m, n, k] of sizes) {
          const a = rand(tA ? [k, m] : [m, k], m * 1000 + k);
          const b = rand(tB ? [n, k] : [k, n], n * 1000 + k + 1);
          const expected = stock(() => tf.matMul(a, b, tA, tB));
          expectClose(tf.matMul(a, b, tA, tB), expected, 1e-5, `m=${m} n=${n} k=${k}`);
        }
      });
    });

    test('k = 0 gives zeros (and a bias alone); an empty m or n gives an empty result', () => {
      tf.tidy(() => {
        for (const [tA, tB] of [[false, false], [true, true]] as const) {
          const out = tf.matMul(tf.zeros(tA ? [0, 3] : [3, 0]), tf.zeros(tB ? [4, 0] : [0, 4]), tA, tB);
          expect(out.shape).toEqual([3, 4]);
          expect(Array.from(out.dataSync())).toEqual(new Array(12).fill(0));
        }
        const bias = tf.tensor1d([1, 2, 3, 4]);
        const fused = tf.fused.matMul({ a: tf.zeros([3, 0]) as tf.Tensor2D, b: tf.zeros([0, 4]) as tf.Tensor2D, bias });
        expect(Array.from(fused.dataSync())).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
        expect(tf.matMul(tf.zeros([0, 5]), rand([5, 3], 1)).shape).toEqual([0, 3]);
        expect(tf.matMul(rand([2, 5], 1), tf.zeros([5, 0])).shape).toEqual([2, 0]);
      });
    });

    test('an empty batch dim gives an empty result (and writes nothing)', () => {
      tf.tidy(() => {
        expect(tf.matMul(tf.zeros([0, 2, 5]), rand([5, 3], 1)).shape).toEqual([0, 2, 3]);
        expect(tf.matMul(rand([2, 5], 1), tf.zeros([3, 0, 5, 4])).shape).toEqual([3, 0, 2, 4]);
        const empty: tf.Tensor = tf.zeros([0, 2, 5]);
        expect(tf.fused.matMul({ a: empty as tf.Tensor2D, b: rand([5, 3], 1) as tf.Tensor2D, bias: rand([3], 2) }).shape).toEqual([0, 2, 3]);
        // The heap is intact: a product afterwards is still right.
        const a = rand([13, 37], 1), b = rand([37, 33], 2);
        expectClose(tf.matMul(a, b), stock(() => tf.matMul(a, b)));
      });
    });

    test('inputs that are slices of bigger tensors (views into shared memory on cpu)', () => {
      tf.tidy(() => {
        const a = tf.slice(rand([20, 9], 1), [7, 0], [5, 9]);
        const b = tf.slice(rand([9, 40], 2), [0, 3], [9, 31]);
        expectClose(tf.matMul(a, b), stock(() => tf.matMul(a, b)));
      });
    });

    test('float32 inputs whose cpu values are not a Float32Array (cast from a bool mask): converted, never a throw', () => {
      tf.tidy(() => {
        // On cpu, cast(bool → float32) keeps the Uint8Array: a padded batch's mask reaches matMul so.
        const mask = tf.cast(tf.tensor2d([[true, false, true], [false, true, true]], [2, 3], 'bool'), 'float32');
        const b = rand([3, 4], 3);
        const bias = tf.cast(tf.tensor1d([true, false, true, true], 'bool'), 'float32');
        expectClose(tf.matMul(mask, b), stock(() => tf.matMul(mask, b)));
        expectClose(tf.matMul(b, mask, true, true), stock(() => tf.matMul(b, mask, true, true)));
        expectClose(tf.fused.matMul({ a: mask, b, bias }), stock(() => tf.fused.matMul({ a: mask, b, bias })));
      });
    });

    test('few rows (m ≤ 4, a decode step): B streamed unpacked — every transpose, a bias, batches, columns split across threads, k not a multiple of 8', () => {
      tf.tidy(() => {
        for (const m of [1, 2, 3, 4, 5]) {
          for (const [n, k] of [[1, 1], [3, 7], [1100, 29], [2050, 768]] as const) {
            for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
              const a = rand(tA ? [k, m] : [m, k], 10 * m + k);
              const b = rand(tB ? [n, k] : [k, n], n + k);
              const what = `m=${m} n=${n} k=${k} tA=${tA} tB=${tB}`;
              expectClose(tf.matMul(a, b, tA, tB), stock(() => tf.matMul(a, b, tA, tB)), 1e-5, what);
              const bias = rand([n], 7);
              const fused = (x: tf.Tensor2D, y: tf.Tensor2D) => tf.fused.matMul({ a: x, b: y, bias, transposeA: tA, transposeB: tB });
              // (against matMul + add: the stock wasm _FusedMatMul gets [1, 768]·[2050, 768]ᵀ + bias wrong, off by up to 55)
              expectClose(fused(a as tf.Tensor2D, b as tf.Tensor2D), stock(() => tf.add(tf.matMul(a, b, tA, tB), bias)), 1e-5, `${what} + bias`);
            }
          }
        }
        // a batch of one-row products (attention heads of one new token), and one row against a batch of B
        const q = rand([12, 1, 64], 1), kT = rand([12, 40, 64], 2);
        expectClose(tf.matMul(q, kT, false, true), referenceMatMul(q, tf.transpose(kT, [0, 2, 1])));
        const row = rand([1, 768], 3), bs = rand([3, 768, 50], 4);
        expectClose(tf.matMul(row, bs), referenceMatMul(row, bs));
      });
    });

    test('n above the column block (3100 columns) and m above the row block (500 rows)', () => {
      tf.tidy(() => {
        const a = rand([3, 5], 1), b = rand([5, 3100], 2);
        expectClose(tf.matMul(a, b), stock(() => tf.matMul(a, b)));
        const c = rand([7, 500], 3), d = rand([7, 3], 4);
        expectClose(tf.matMul(c, d, true), stock(() => tf.matMul(c, d, true)));
      });
    });
  });

  describe('batched products', () => {
    test.each([
      [[2, 5, 7], [2, 7, 4]],
      [[3, 5, 7], [7, 4]],
      [[5, 7], [3, 7, 4]],
      [[1, 5, 7], [3, 7, 4]],
      [[3, 5, 7], [1, 7, 4]],
      [[2, 3, 5, 7], [2, 3, 7, 4]],
      [[2, 3, 5, 7], [7, 4]],
      [[2, 3, 5, 7], [1, 1, 7, 4]],
      [[1, 3, 5, 7], [3, 7, 4]],
    ])('%j · %j, all four transpose combinations: equal to the stock kernel', (sa, sb) => {
      tf.tidy(() => {
        for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          const swap = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s.at(-1)!, s.at(-2)!] : s);
          const a = rand(swap(sa, tA), 1), b = rand(swap(sb, tB), 2);
          expectClose(tf.matMul(a, b, tA, tB), stock(() => tf.matMul(a, b, tA, tB)), 1e-5, `tA=${tA} tB=${tB}`);
        }
      });
    });

    test.each([
      [[2, 1, 3, 4], [1, 5, 4, 6]],
      [[3, 1, 2, 4], [1, 3, 4, 5]],
      [[2, 1, 3, 3, 4], [4, 1, 4, 6]],
      [[2, 3, 1, 3, 4], [1, 3, 4, 4, 6]],
    ])('general batch broadcasting %j · %j: equal to one 2-D product per output matrix', (sa, sb) => {
      tf.tidy(() => {
        const a = rand(sa, 1), b = rand(sb, 2);
        expectClose(tf.matMul(a, b), referenceMatMul(a, b));
        const at = tf.transpose(a, [...sa.keys()].map((i) => (i < sa.length - 2 ? i : 2 * sa.length - 3 - i)));
        expectClose(tf.matMul(at, b, true), referenceMatMul(a, b));
      });
    });
  });

  describe('tf.fused.matMul', () => {
    test.each([
      ['no bias', null],
      ['bias [n]', [71]],
      ['bias [1,n]', [1, 71]],
    ])('%s, all four transpose combinations, 2-D and batched: equal to matMul + add on the stock kernels', (_, biasShape) => {
      tf.tidy(() => {
        const bias = biasShape ? rand(biasShape, 3) : undefined;
        for (const [sa, sb] of [[[37, 413], [413, 71]], [[3, 13, 5], [5, 71]], [[2, 13, 5], [2, 5, 71]]]) {
          for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
            const swap = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s.at(-1)!, s.at(-2)!] : s);
            const a = rand(swap(sa!, tA), 1), b = rand(swap(sb!, tB), 2);
            const expected = stock(() => (bias ? tf.add(tf.matMul(a, b, tA, tB), bias) : tf.matMul(a, b, tA, tB)));
            const actual = tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA: tA, transposeB: tB, bias });
            expectClose(actual, expected, 1e-5, `${sa} · ${sb} tA=${tA} tB=${tB}`);
          }
        }
      });
    });
  });

  describe('multi-threaded products', () => {
    test.each([
      ['[300,200]·[200,500]', [300, 200], [200, 500]],
      ['[500,200]·[200,300] (rows split)', [500, 200], [200, 300]],
      ['[8,64,96]·[8,96,64] (batch split)', [8, 64, 96], [8, 96, 64]],
      ['[2,300,200]·[200,500] (broadcast b)', [2, 300, 200], [200, 500]],
    ])('%s: threads 1 and 2 give the same bits, equal to the stock kernel', (_, sa, sb) => {
      tf.tidy(() => {
        const a = rand(sa!, 1), b = rand(sb!, 2);
        const bias = rand([sb!.at(-1)!], 3);
        for (const [tA, tB] of [[false, false], [true, true]] as const) {
          const at = tA ? tf.transpose(a, [...sa!.keys()].map((i) => (i < sa!.length - 2 ? i : 2 * sa!.length - 3 - i))) : a;
          const bt = tB ? tf.transpose(b, [...sb!.keys()].map((i) => (i < sb!.length - 2 ? i : 2 * sb!.length - 3 - i))) : b;
          const expected = stock(() => tf.matMul(at, bt, tA, tB));
          const run = (threads: number) => {
            expect(enableNativeMatMul({ threads }).threads).toBe(threads);
            return [tf.matMul(at, bt, tA, tB), tf.fused.matMul({ a: at as tf.Tensor2D, b: bt as tf.Tensor2D, transposeA: tA, transposeB: tB, bias })];
          };
          const [one, oneFused] = run(1);
          const [two, twoFused] = run(2);
          expect(Array.from(two!.dataSync())).toEqual(Array.from(one!.dataSync()));
          expect(Array.from(twoFused!.dataSync())).toEqual(Array.from(oneFused!.dataSync()));
          expectClose(one!, expected, 1e-5, `tA=${tA} tB=${tB}`);
          expectClose(oneFused!, stock(() => tf.add(expected, bias)), 1e-5, `fused tA=${tA} tB=${tB}`);
        }
      });
    });
  });

  describe('gradients', () => {
    test.each([
      [[13, 37], [37, 33]],
      [[3, 13, 37], [3, 37, 33]],
      [[2, 3, 13, 37], [2, 3, 37, 33]],
    ])('tf.grads through tf.matMul %j · %j (equal batch dims: the TF.js gradient does not reduce a broadcast side), all four transpose combinations: equal to the stock gradients', (sa, sb) => {
      tf.tidy(() => {
        for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          const swap = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s.at(-1)!, s.at(-2)!] : s);
          const a = rand(swap(sa, tA), 1), b = rand(swap(sb, tB), 2);
          const w = rand([...sa.slice(0, -2), sa.at(-2)!, sb.at(-1)!], 3);
          const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, tA, tB), w));
          const expected = stock(() => tf.grads(f)([a, b]));
          const actual = tf.grads(f)([a, b]);
          actual.forEach((g, i) => expectClose(g, expected[i]!, 1e-5, `tA=${tA} tB=${tB} d${'ab'[i]}`));
        }
      });
    });

    test('tf.grads through tf.fused.matMul with a bias: equal to the stock gradients', () => {
      tf.tidy(() => {
        const a = rand([13, 37], 1), b = rand([33, 37], 2), bias = rand([33], 3), w = rand([13, 33], 4);
        const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(tf.mul(tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeB: true, bias: z }), w));
        const expected = stock(() => tf.grads(f)([a, b, bias]));
        tf.grads(f)([a, b, bias]).forEach((g, i) => expectClose(g, expected[i]!, 1e-5, `d${'ab'[i] ?? 'bias'}`));
      });
    });
  });

  describe('the cases that go to the stock kernels', () => {
    /** Runs `f` with the active backend's stock kernels wrapped to count their calls. */
    function countingStock(f: (calls: Record<string, number>) => void) {
      const backend = tf.getBackend();
      disableNativeMatMul();
      const calls: Record<string, number> = { BatchMatMul: 0, _FusedMatMul: 0 };
      const stockConfigs = KERNELS.map((name) => tf.getKernel(name, backend)!);
      for (const config of stockConfigs) {
        tf.unregisterKernel(config.kernelName, backend);
        const kernelFunc: tf.KernelFunc = (args) => (calls[config.kernelName]!++, config.kernelFunc(args));
        tf.registerKernel({ ...config, kernelFunc });
      }
      try {
        enableNativeMatMul(); // takes the counting wrappers for the stock kernels
        f(calls);
      } finally {
        disableNativeMatMul();
        for (const config of stockConfigs) {
          tf.unregisterKernel(config.kernelName, backend);
          tf.registerKernel(config);
        }
      }
    }

    test('float32 products, linear fused products and row biases run natively; the rest on the stock kernels', () => {
      countingStock((calls) =>
        tf.tidy(() => {
          const a = rand([5, 7], 1), b = rand([7, 4], 2);
          tf.matMul(a, b);
          tf.matMul(rand([2, 1, 5, 7], 1), rand([1, 3, 7, 4], 2));
          tf.fused.matMul({ a, b, bias: rand([4], 3) });
          tf.fused.matMul({ a, b, bias: rand([1, 4], 3), activation: 'linear' });
          expect(calls).toEqual({ BatchMatMul: 0, _FusedMatMul: 0 });
          outcome(() => tf.matMul(tf.tensor2d([[1, 2]], [1, 2], 'int32'), tf.tensor2d([[3], [4]], [2, 1], 'int32')));
          expect(calls).toEqual({ BatchMatMul: 1, _FusedMatMul: 0 });
          tf.fused.matMul({ a, b, activation: 'relu' });
          outcome(() => tf.fused.matMul({ a, b, bias: rand([5, 4], 3) }));
          expect(calls).toEqual({ BatchMatMul: 1, _FusedMatMul: 2 });
        }),
      );
    });

    test('int32 inputs: what the stock kernel gives (the product on cpu, its error on wasm)', () => {
      const f = () => tf.matMul(tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32'), tf.tensor2d([[5, 6], [7, 8]], [2, 2], 'int32'));
      const expected = stock(() => outcome(f));
      expect(outcome(f)).toEqual(expected);
      if (activeBackend === 'cpu') expect(expected).toEqual({ shape: [2, 2], dtype: 'int32', values: [19, 22, 43, 50] });
    });

    test("activation 'relu' in tf.fused.matMul: equal to the stock kernel", () => {
      tf.tidy(() => {
        const a = rand([13, 37], 1), b = rand([37, 33], 2), bias = rand([33], 3);
        const f = () => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu' });
        const expected = stock(f);
        expect(maxAbs(tf.minimum(expected, 0))).toBe(0);
        expectClose(f(), expected);
      });
    });

    test('a bias of shape [m, n]: what the stock kernel gives (matMul + add on cpu, its error on wasm)', () => {
      tf.tidy(() => {
        const a = rand([13, 37], 1), b = rand([37, 33], 2), bias = rand([13, 33], 3);
        const f = () => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias });
        const expected = stock(() => outcome(f));
        expect(outcome(f)).toEqual(expected);
        if (activeBackend === 'cpu') expectClose(f(), stock(() => tf.add(tf.matMul(a, b), bias)));
      });
    });
  });

  describe.each([
    { form: 'exact' as const, approximate: 'none' as const, kernel: GELU_KERNEL, gradKernel: GELU_GRAD_KERNEL, stockOp: 'Erf', name: 'VlmGelu', gradAbs: 1e-6 },
    // The tanh form's gradient, 0.5·(1 + tanh u) + 0.5·x·(1 − tanh²u)·u', has 1 + tanh u and
    // 1 − tanh²u in multiples of float's spacing near 1 once |x| > 3: one ulp of tanh u moves it by
    // up to ~1e-6 there, in the stock composition as in the native kernel (see the float64 test).
    { form: 'tanh' as const, approximate: 'tanh' as const, kernel: GELU_TANH_KERNEL, gradKernel: GELU_TANH_GRAD_KERNEL, stockOp: 'Tanh', name: 'VlmGeluTanh', gradAbs: 1e-5 },
  ])('GELU ($form)', ({ form, approximate, kernel, gradKernel, stockOp, name, gradAbs }) => {
    const g = (t: tf.Tensor) => gelu(t, approximate);
    /** Every element of `actual` within `abs + rel·|expected|` of `expected` (NaN where it is NaN). */
    function expectElementsClose(actual: tf.Tensor, expected: tf.Tensor, abs: number, rel: number, what = '') {
      expect(actual.shape, what).toEqual(expected.shape);
      const a = actual.dataSync(), e = expected.dataSync();
      let worst = 0, at = -1;
      for (let i = 0; i < e.length; i++) {
        if (Number.isNaN(e[i]!) || Number.isNaN(a[i]!)) {
          expect(Number.isNaN(a[i]!), `${what} [${i}]: expected ${e[i]}, got ${a[i]}`).toBe(Number.isNaN(e[i]!));
          continue;
        }
        if (a[i] === e[i]) continue; // also ±Infinity
        const excess = Math.abs(a[i]! - e[i]!) - (abs + rel * Math.abs(e[i]!));
        if (excess > worst) (worst = excess), (at = i);
      }
      expect(worst, `${what}: worst element [${at}]: expected ${e[at]}, got ${a[at]}`).toBe(0);
    }
    const special = [-Infinity, -30, -10, -5.5, -4.1, -4, -3.9, -2, -1, -0.5, -1e-3, -1e-30, 0, 1e-30, 1e-3, 0.5, 1, 2, 3.9, 4, 4.1, 5.5, 10, 30, 88, Infinity, NaN];
    const inputs: Array<[string, () => tf.Tensor]> = [
      ['special values (±inf, NaN, the ±4 clamp of erf)', () => tf.tensor1d(special)],
      ['[1]', () => rand([1], 1)],
      ['[7] (a vector tail only)', () => tf.mul(rand([7], 2), 3)],
      ['[33, 65]', () => tf.mul(rand([33, 65], 3), 3)],
      ['[3, 50001] (split over threads, odd size)', () => tf.mul(rand([3, 50001], 4), 3)],
      ['every 1/1000 from -8 to 8 (both sides of every branch)', () => tf.div(tf.range(-8000, 8001), 1000)],
    ];

    test.each(inputs)('forward on %s: equal to the stock kernels (core composes erf) within 1e-6 + 1e-6 relative, through the native kernel', async (what, make) => {
      const x = tf.tidy(make);
      const info = await tf.profile(() => g(x));
      try {
        const names = info.kernels.map((k) => k.name);
        expect(names, what).toContain(kernel);
        expect(names, what).not.toContain(stockOp);
        tf.tidy(() => expectElementsClose(info.result as tf.Tensor, stock(() => g(x)), 1e-6, 1e-6, what));
      } finally {
        tf.dispose([x, info.result as tf.Tensor]);
      }
    });

    test.each(inputs.slice(1))(`gradient on %s: equal to the stock gradient within ${gradAbs} + 1e-6 relative`, (what, make) => {
      tf.tidy(() => {
        const x = make();
        const w = rand(x.shape, 9);
        const f = (t: tf.Tensor) => tf.sum(tf.mul(g(t), w));
        expectElementsClose(tf.grad(f)(x), stock(() => tf.grad(f)(x)), gradAbs, 1e-6, what);
      });
    });

    test.runIf(form === 'tanh')('against float64 on every 1/1000 from -8 to 8: forward within 2e-7 + 4e-7 relative, gradient no further off than the stock one', () => {
      tf.tidy(() => {
        const x = tf.div(tf.range(-8000, 8001), 1000);
        const xs = x.dataSync();
        const beta = Math.sqrt(2 / Math.PI), kappa = 0.044715;
        const value = (v: number) => 0.5 * v * (1 + Math.tanh(beta * (v + kappa * v ** 3)));
        const slope = (v: number) => {
          const t = Math.tanh(beta * (v + kappa * v ** 3));
          return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * beta * (1 + 3 * kappa * v * v);
        };
        const worst = (got: ArrayLike<number>, ref: (v: number) => number, abs: number, rel: number) =>
          Math.max(...Array.from(xs, (v, i) => Math.abs(got[i]! - ref(v)) - (abs + rel * Math.abs(ref(v)))));
        expect(worst(g(x).dataSync(), value, 2e-7, 4e-7)).toBeLessThanOrEqual(0);
        const grad = tf.grad((t: tf.Tensor) => tf.sum(g(t)));
        const nativeError = worst(grad(x).dataSync(), slope, 0, 0), stockError = worst(stock(() => grad(x)).dataSync(), slope, 0, 0);
        expect(nativeError).toBeLessThanOrEqual(1.5 * stockError + 1e-7);
        expect(nativeError).toBeLessThan(1e-5);
      });
    });

    test('the gradient of special values (no NaN where the stock gradient has none), and the gradient kernel is the native one', async () => {
      const finite = special.filter((v) => Number.isFinite(v));
      const x = tf.tensor1d(finite);
      const f = (t: tf.Tensor) => tf.sum(g(t));
      tf.tidy(() => expectElementsClose(tf.grad(f)(x), stock(() => tf.grad(f)(x)), gradAbs, 1e-6));
      const info = await tf.profile(() => tf.grad(f)(x));
      expect(info.kernels.map((k) => k.name)).toContain(gradKernel);
      expect(info.kernels.map((k) => k.name)).not.toContain(stockOp);
      tf.dispose(info.result as tf.Tensor);
      x.dispose();
    });

    test('threads 1 and 2 give the same bits, forward and gradient', () => {
      tf.tidy(() => {
        const x = tf.mul(rand([5, 40001], 5), 3), w = rand([5, 40001], 6);
        const run = (threads: number) => {
          enableNativeMatMul({ threads });
          return [g(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(g(t), w)))(x)].map((t) => Array.from(t.dataSync()));
        };
        const [one, two] = [run(1), run(2)];
        expect(two[0]).toEqual(one[0]);
        expect(two[1]).toEqual(one[1]);
      });
    });

    test("registered on both backends by default; { gelu: false } and disableNativeMatMul remove them (core's gelu composes stock kernels again)", async () => {
      for (const backend of BACKENDS) {
        expect(tf.getKernel(kernel, backend), backend).toBeDefined();
        expect(tf.getKernel(gradKernel, backend), backend).toBeDefined();
      }
      expect(enableNativeMatMul({ gelu: false }).gelu).toBe(false);
      for (const backend of BACKENDS) expect(tf.getKernel(kernel, backend), backend).toBeUndefined();
      const x = tf.tensor1d([-1, 0, 2]);
      const composed = await tf.profile(() => g(x));
      expect(composed.kernels.map((k) => k.name)).toContain(stockOp);
      tf.dispose(composed.result as tf.Tensor);
      expect(enableNativeMatMul().gelu).toBe(true);
      disableNativeMatMul();
      for (const backend of BACKENDS) expect(tf.getKernel(gradKernel, backend), backend).toBeUndefined();
      x.dispose();
    });

    test('the kernels refuse other dtypes and mismatched shapes with an Error saying what they expected', () => {
      const engine = tf.engine();
      tf.tidy(() => {
        const i = tf.tensor1d([1, 2], 'int32'), x = tf.tensor1d([1, 2]), dy = tf.tensor1d([1, 2, 3]);
        expect(() => engine.runKernel(kernel, { x: i })).toThrow(new RegExp(`${name}: expected x of dtype float32, got int32`));
        expect(() => engine.runKernel(gradKernel, { dy, x })).toThrow(new RegExp(`${name}Grad: expected dy of shape \\[2\\], got \\[3\\]`));
        // core's gelu keeps other dtypes on the composed path
        expect(g(i).dtype).toBe('float32');
      });
    });
  });

  describe('LayerNorm', () => {
    const LN_KERNELS = [LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_PARAM_GRAD_KERNEL];
    /** A LayerNorm of width `dim` with random weight and bias (or none). */
    function layerNorm(dim: number, affine = true, eps = 1e-5): LayerNorm {
      const ln = new LayerNorm({ dim, eps, elementwiseAffine: affine });
      for (const [name, v] of ln.namedParameters()) tf.tidy(() => v.assign(tf.add(rand([dim], name === 'weight' ? 21 : 22), name === 'weight' ? 1 : 0)));
      return ln;
    }
    /** Every element of `actual` within `tol · max(1, max |expected|)` of `expected`. */
    function expectNear(actual: tf.Tensor, expected: tf.Tensor, tol: number, what: string) {
      expect(actual.shape, what).toEqual(expected.shape);
      const a = actual.dataSync(), e = expected.dataSync();
      let worst = 0, at = -1, scale = 1;
      for (let i = 0; i < e.length; i++) scale = Math.max(scale, Math.abs(e[i]!));
      for (let i = 0; i < e.length; i++) {
        const d = Math.abs(a[i]! - e[i]!);
        if (!(d <= worst)) (worst = d), (at = i);
      }
      expect(worst, `${what}: worst element [${at}]: expected ${e[at]}, got ${a[at]}`).toBeLessThanOrEqual(tol * scale);
    }
    /** y, dx, dweight, dbias of `ln` at `x` for the loss sum(y·w). */
    function valuesAndGrads(ln: LayerNorm, x: tf.Tensor, w: tf.Tensor): tf.Tensor[] {
      const xv = tf.variable(x);
      try {
        const params = ln.parameters();
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(ln.forward(xv), w)), [xv, ...params]);
        value.dispose();
        const y = ln.forward(x);
        return [y, grads[xv.name]!, ...params.map((p) => grads[p.name]!)];
      } finally {
        xv.dispose();
      }
    }
    const cases: Array<[string, number[], number, number]> = [
      // what, x's shape, scale, offset
      ['width 1', [7, 1], 1, 0],
      ['width 3, 7 rows', [7, 3], 1, 0],
      ['width 1023, 1 row', [1, 1023], 1, 0],
      ['width 1023, 7 rows', [7, 1023], 2, 0.5],
      ['rank 3 [2, 5, 64]', [2, 5, 64], 1, 0],
      ['[48, 2048] (split over threads)', [48, 2048], 1, 0],
      ['large values (1e4 ± 3)', [7, 1023], 3, 1e4],
      ['large spread (±1e4)', [5, 257], 1e4, 0],
    ];

    test.each(cases)('%s: values and gradients (x, weight, bias) equal to the stock path, through the native kernels', async (what, shape, scale, offset) => {
      const ln = layerNorm(shape[shape.length - 1]!);
      try {
        tf.tidy(() => {
          const x = tf.add(tf.mul(rand(shape, 31), scale), offset), w = rand(shape, 32);
          const ours = valuesAndGrads(ln, x, w);
          const theirs = stock(() => valuesAndGrads(ln, x, w));
          // The stock path sums the row statistics in float32, these kernels in double: at
          // 1e4 ± 3 the stock mean carries ~1e-3 of rounding, so compare x̂ there loosely.
          const tol = offset >= 1e4 ? 2e-3 : 2e-5;
          ['y', 'dx', 'dweight', 'dbias'].forEach((name, i) => expectNear(ours[i]!, theirs[i]!, tol, `${what} ${name}`));
        });
        const x = rand(shape, 33);
        const info = await tf.profile(() => tf.grads((t: tf.Tensor) => tf.sum(ln.forward(t)))([x]));
        const names = info.kernels.map((k) => k.name);
        for (const name of [LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL]) expect(names, what).toContain(name);
        expect(names, what).not.toContain('Mean');
        tf.dispose([x, ...(info.result as tf.Tensor[])]);
      } finally {
        ln.dispose();
      }
    });

    test('without weight and bias (elementwiseAffine: false), and with eps 1e-12: equal to the stock path', () => {
      for (const eps of [1e-5, 1e-12]) {
        const ln = layerNorm(65, false, eps);
        tf.tidy(() => {
          const x = rand([9, 65], 41), w = rand([9, 65], 42);
          const ours = valuesAndGrads(ln, x, w), theirs = stock(() => valuesAndGrads(ln, x, w));
          expect(ours).toHaveLength(2);
          ['y', 'dx'].forEach((name, i) => expectNear(ours[i]!, theirs[i]!, 2e-5, `eps ${eps} ${name}`));
        });
        ln.dispose();
      }
    });

    test('a constant row (variance 0) gives x̂ = 0 and finite gradients, as the stock path', () => {
      const ln = layerNorm(5);
      tf.tidy(() => {
        const x = tf.tensor2d([[3, 3, 3, 3, 3], [1, 2, 3, 4, 5]]), w = rand([2, 5], 43);
        const ours = valuesAndGrads(ln, x, w), theirs = stock(() => valuesAndGrads(ln, x, w));
        ours.forEach((t, i) => expectNear(t, theirs[i]!, 2e-5, `output ${i}`));
        for (const t of ours) expect(Array.from(t.dataSync()).every(Number.isFinite)).toBe(true);
      });
      ln.dispose();
    });

    test('only the weight and bias gradients (x constant, as a norm on frozen features): the native parameter kernel, no dx', async () => {
      const ln = layerNorm(300);
      const x = rand([40, 300], 44);
      const [weight, bias] = ln.parameters() as [tf.Variable, tf.Variable];
      const f = () => tf.sum(tf.mul(ln.forward(x), tf.range(0, 300)));
      const info = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(f, [weight, bias]);
        value.dispose();
        return [grads[weight.name]!, grads[bias.name]!];
      });
      const names = info.kernels.map((k) => k.name);
      expect(names).toContain(LAYER_NORM_PARAM_GRAD_KERNEL);
      expect(names).not.toContain(LAYER_NORM_GRAD_KERNEL);
      tf.tidy(() => {
        const { value, grads } = stock(() => tf.variableGrads(f, [weight, bias]));
        const ours = info.result as tf.Tensor[];
        expectNear(ours[0]!, grads[weight.name]!, 2e-5, 'dweight');
        expectNear(ours[1]!, grads[bias.name]!, 2e-5, 'dbias');
        tf.dispose([value, ...ours]);
      });
      x.dispose();
      ln.dispose();
    });

    test('threads 1 and 2 give the same bits: values and every gradient', () => {
      const ln = layerNorm(1023);
      tf.tidy(() => {
        const x = tf.mul(rand([67, 1023], 51), 3), w = rand([67, 1023], 52);
        const run = (threads: number) => {
          enableNativeMatMul({ threads });
          return valuesAndGrads(ln, x, w).map((t) => Array.from(t.dataSync()));
        };
        const [one, two] = [run(1), run(2)];
        for (let i = 0; i < 4; i++) expect(two[i], `output ${i}`).toEqual(one[i]);
      });
      ln.dispose();
    });

    test("registered on both backends by default; { layerNorm: false } and disableNativeMatMul remove them (core's LayerNorm composes Mean again)", async () => {
      for (const backend of BACKENDS) for (const name of LN_KERNELS) expect(tf.getKernel(name, backend), `${backend} ${name}`).toBeDefined();
      const info = enableNativeMatMul({ layerNorm: false });
      expect(info.layerNorm).toBe(false);
      expect(info.gelu).toBe(true);
      for (const backend of BACKENDS) for (const name of LN_KERNELS) expect(tf.getKernel(name, backend), `${backend} ${name}`).toBeUndefined();
      expect(tf.getKernel(GELU_KERNEL, activeBackend)).toBeDefined();
      const ln = new LayerNorm({ dim: 4 });
      const x = tf.tensor2d([[1, 2, 3, 5]]);
      const composed = await tf.profile(() => ln.forward(x));
      expect(composed.kernels.map((k) => k.name)).toContain('Mean');
      tf.dispose(composed.result as tf.Tensor);
      expect(enableNativeMatMul({ gelu: false }).layerNorm).toBe(true);
      expect(tf.getKernel(LAYER_NORM_KERNEL, activeBackend)).toBeDefined();
      expect(tf.getKernel(GELU_KERNEL, activeBackend)).toBeUndefined();
      const native = await tf.profile(() => ln.forward(x));
      expect(native.kernels.map((k) => k.name)).toContain(LAYER_NORM_KERNEL);
      expect(native.kernels.map((k) => k.name)).not.toContain('Mean');
      tf.dispose(native.result as tf.Tensor);
      disableNativeMatMul();
      for (const backend of BACKENDS) for (const name of LN_KERNELS) expect(tf.getKernel(name, backend), `${backend} ${name}`).toBeUndefined();
      tf.dispose([x]);
      ln.dispose();
    });

    test('the kernels refuse wrong dtypes, shapes and inputs with an Error saying what they expected', () => {
      const engine = tf.engine();
      tf.tidy(() => {
        const x = tf.ones([2, 3]), g = tf.ones([3]), i = tf.ones([2, 3], 'int32'), stats = tf.ones([2]);
        expect(() => engine.runKernel(LAYER_NORM_KERNEL, { x: i }, { eps: 1e-5 })).toThrow(/VlmLayerNorm: expected x of dtype float32, got int32/);
        expect(() => engine.runKernel(LAYER_NORM_KERNEL, { x, gamma: tf.ones([4]), beta: g }, { eps: 1e-5 })).toThrow(/VlmLayerNorm: expected gamma of shape \[3\], got \[4\]/);
        expect(() => engine.runKernel(LAYER_NORM_KERNEL, { x, gamma: g }, { eps: 1e-5 })).toThrow(/VlmLayerNorm: expected gamma and beta both or neither, got gamma alone/);
        expect(() => engine.runKernel(LAYER_NORM_KERNEL, { x }, {})).toThrow(/VlmLayerNorm: expected attr eps ≥ 0, got undefined/);
        expect(() => engine.runKernel(LAYER_NORM_KERNEL, { x: tf.scalar(1) }, { eps: 1e-5 })).toThrow(/VlmLayerNorm: expected x with at least one axis/);
        expect(() => engine.runKernel(LAYER_NORM_GRAD_KERNEL, { dy: tf.ones([2, 4]), x, mean: stats, rstd: stats })).toThrow(/VlmLayerNormGrad: expected dy of shape \[2,3\], got \[2,4\]/);
        expect(() => engine.runKernel(LAYER_NORM_GRAD_KERNEL, { dy: x, x, mean: tf.ones([3]), rstd: stats })).toThrow(/VlmLayerNormGrad: expected mean of shape \[2\], got \[3\]/);
        expect(() => engine.runKernel(LAYER_NORM_PARAM_GRAD_KERNEL, { dy: x, x, mean: stats })).toThrow(/VlmLayerNormParamGrad: expected inputs dy, x, mean and rstd/);
        // core's LayerNorm says what it expected before any kernel runs
        const ln = new LayerNorm({ dim: 3 });
        expect(() => ln.forward(i)).toThrow(/LayerNorm input/);
        ln.dispose();
      });
    });

    test('empty inputs: no rows gives an empty output and dx, and zero weight/bias gradients', () => {
      // (The stock path's weight gradient, a sum over no rows, is not always zero on wasm.)
      const ln = layerNorm(6);
      tf.tidy(() => {
        const x = tf.zeros([0, 6]), w = tf.zeros([0, 6]);
        const [y, dx, dweight, dbias] = valuesAndGrads(ln, x, w);
        expect(y!.shape).toEqual([0, 6]);
        expect(dx!.shape).toEqual([0, 6]);
        expect(Array.from(dweight!.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
        expect(Array.from(dbias!.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
      });
      ln.dispose();
    });
  });

  describe('enable, disable, options', () => {
    test('enableNativeMatMul reports what it set up; default threads: every CPU', () => {
      const info = enableNativeMatMul();
      expect(['avx512', 'avx2', 'generic']).toContain(info.isa);
      expect(info.threads).toBeGreaterThanOrEqual(1);
      expect(info.threads).toBeLessThanOrEqual(64);
      expect(info.backends).toEqual(['wasm', 'cpu']);
      expect(enableNativeMatMul({ backends: [activeBackend as 'wasm' | 'cpu'] }).backends).toEqual([activeBackend]);
    });

    test('disableNativeMatMul puts back the exact stock kernel functions, also after enabling twice', () => {
      for (const [key, config] of original) {
        const [backend, name] = key.split('/') as [string, string];
        expect(tf.getKernel(name, backend)!.kernelFunc, key).not.toBe(config.kernelFunc);
      }
      expect(enableNativeMatMul({ threads: 1 }).threads).toBe(1);
      expect(enableNativeMatMul({ threads: 2 }).threads).toBe(2);
      disableNativeMatMul();
      for (const [key, config] of original) {
        const [backend, name] = key.split('/') as [string, string];
        expect(tf.getKernel(name, backend)!.kernelFunc, key).toBe(config.kernelFunc);
        expect(tf.getKernel(name, backend)!.setupFunc, key).toBe(config.setupFunc);
      }
      disableNativeMatMul(); // twice is fine too
      expect(tf.getKernel('BatchMatMul', activeBackend)!.kernelFunc).toBe(original.get(`${activeBackend}/BatchMatMul`)!.kernelFunc);
    });

    test('enabling twice changes the thread count and products stay right', () => {
      tf.tidy(() => {
        const a = rand([300, 200], 1), b = rand([200, 500], 2);
        const expected = stock(() => tf.matMul(a, b));
        for (const threads of [2, 1, 3]) {
          expect(enableNativeMatMul({ threads }).threads).toBe(threads);
          expectClose(tf.matMul(a, b), expected, 1e-5, `threads=${threads}`);
        }
      });
    });

    test('bad options throw an Error naming the option, and change nothing', () => {
      disableNativeMatMul();
      expect(() => enableNativeMatMul({ threads: 0 })).toThrow(/enableNativeMatMul: threads must be a positive integer, got 0/);
      expect(() => enableNativeMatMul({ threads: 1.5 })).toThrow(/threads must be a positive integer, got 1\.5/);
      expect(() => enableNativeMatMul({ backends: ['webgl' as 'wasm'] })).toThrow(/enableNativeMatMul: backends can be 'wasm' or 'cpu', got 'webgl'/);
      expect(() => enableNativeMatMul({ backends: ['cpu', 'webgl' as 'wasm'] })).toThrow(Error);
      for (const [key, config] of original) {
        const [backend, name] = key.split('/') as [string, string];
        expect(tf.getKernel(name, backend)!.kernelFunc, key).toBe(config.kernelFunc);
      }
    });

    test.runIf(activeBackend === 'wasm')("tells @vlm/core the wasm matMul is fast (core's wasm workarounds off), and not after disabling", () => {
      expect(onSlowMatMulWasm()).toBe(false);
      disableNativeMatMul();
      expect(onSlowMatMulWasm()).toBe(true);
      enableNativeMatMul({ backends: ['cpu'] });
      expect(onSlowMatMulWasm()).toBe(true);
      enableNativeMatMul();
      expect(onSlowMatMulWasm()).toBe(false);
    });

    test('nativeMatMulAvailable() is true where the addon is built', () => {
      expect(nativeMatMulAvailable()).toBe(true);
    });
  });
});
