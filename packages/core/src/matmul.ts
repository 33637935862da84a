import * as tf from '@tensorflow/tfjs-core';
import { lazyGradOp } from './lazy-grad';
import { onSlowMatMulWasm, onWasm } from './wasm-kernels';

type Thunk = () => tf.Tensor;

/**
 * `a · bᵀ` for 2-D `a` `[m, k]` and `b` `[n, k]`: on wasm as an explicit transpose and a plain
 * matMul (a transpose flag sends wasm's matMul off XNNPACK to a loop about 12× slower),
 * elsewhere with the flag.
 */
function matMulBT(a: tf.Tensor, b: tf.Tensor, wasm: boolean): tf.Tensor {
  return wasm ? tf.matMul(a as tf.Tensor2D, tf.transpose(b as tf.Tensor2D)) : tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true);
}

/** `aᵀ · b` for 2-D `a` `[k, m]` and `b` `[k, n]`, transposing explicitly on wasm. */
function matMulAT(a: tf.Tensor, b: tf.Tensor, wasm: boolean): tf.Tensor {
  return wasm ? tf.matMul(tf.transpose(a as tf.Tensor2D), b as tf.Tensor2D) : tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, true, false);
}

/**
 * `dy · Wᵀ` (`dy` `[m, out]`, `W` `[in, out]`) on wasm, choosing the cheaper transpose:
 * `dy · transpose(W)` transposes `in·out` elements, `transpose(W · transpose(dy))` transposes
 * `m·(in + out)`; a large weight (up to 37 ms for `[1024, 4096]`) loses to a small activation.
 */
function gradInput(dy: tf.Tensor, w: tf.Tensor, wasm: boolean): tf.Tensor {
  const [m, out] = dy.shape as [number, number];
  const inF = w.shape[0]!;
  if (wasm && m * (inF + out) < inF * out) return tf.transpose(tf.matMul(w as tf.Tensor2D, tf.transpose(dy as tf.Tensor2D)));
  return matMulBT(dy, w, wasm);
}

/**
 * 2-D `a · b` (`[m, k] · [k, n]`) whose gradient is written with plain matMuls: explicit
 * transposes on wasm (its matMul leaves the fast XNNPACK path when given a transpose flag,
 * which the stock matMul gradient uses), flags elsewhere. Gradients of `a` and `b` are only
 * computed when something upstream needs them.
 *
 * @example
 * ```ts
 * matMul2d(tf.ones([2, 3]), tf.ones([3, 4])).shape; // [2, 4]
 * ```
 */
export function matMul2d(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`matMul2d: expected a [m, k] and b [k, n], got a [${a.shape}] and b [${b.shape}]`);
  }
  const wasm = onSlowMatMulWasm();
  return lazyGradOp(
    [a, b],
    () => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    (dy, [as, bs]) => [() => matMulBT(dy, bs!, wasm), () => matMulAT(as!, dy, wasm)],
  ) as tf.Tensor2D;
}

/**
 * `Σ t` over rows (`[m, n]` → `[n]`), as bias and norm gradients need. On wasm as
 * `ones[1, m] · t`: its Sum kernel reduces only the innermost axis, so a column sum first
 * transposes `t` (measured on `[1028, 2048]`: 11 ms, against 1.4 ms as a product).
 *
 * @example
 * ```ts
 * sumRows(tf.ones([3, 2])).arraySync(); // [3, 3]
 * ```
 */
export function sumRows(t: tf.Tensor): tf.Tensor {
  if (!onWasm()) return tf.sum(t, 0);
  const [m, n] = t.shape as [number, number];
  return tf.reshape(tf.matMul(tf.ones([1, m]), t as tf.Tensor2D), [n]);
}

/** Kernels of more than this many elements are multiplied in column blocks on wasm. */
const BLOCK_ELEMENTS = 1 << 22;

/**
 * `x · kernel + bias` on wasm. Single-threaded XNNPACK streams the whole packed kernel once
 * per few rows of `x`; past ~64 MB that falls out of the cache (measured on `[1024, 8192] ·
 * [8192, 2048]`: 10.6 GFLOP/s whole, 18 GFLOP/s as 4 column blocks of 16 MB, the blocks' slice
 * and re-pack included). Smaller kernels stay whole: XNNPACK keeps their packed copy.
 */
function blockedMatMul(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  const [inF, outF] = kernel.shape as [number, number];
  const blocks = inF * outF >= 4 * BLOCK_ELEMENTS ? Math.ceil((inF * outF) / BLOCK_ELEMENTS) : 1;
  if (blocks === 1) return tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel as tf.Tensor2D, bias: bias ?? undefined });
  const width = Math.ceil(outF / blocks);
  const parts: tf.Tensor[] = [];
  for (let c = 0; c < outF; c += width) {
    const w = Math.min(width, outF - c);
    parts.push(tf.fused.matMul({ a: x as tf.Tensor2D, b: tf.slice(kernel, [0, c], [inF, w]) as tf.Tensor2D, bias: bias ? tf.slice(bias, c, w) : undefined }));
  }
  return tf.concat(parts, 1);
}

/**
 * 2-D `x · kernel (+ bias)` (`[m, in] · [in, out]`), the bias fused into the matMul (on wasm,
 * kernels over 64 MB in column blocks that stay in cache), with the
 * gradient of {@link matMul2d} (`dX` by the cheaper of `dy·Kᵀ` and `(K·dyᵀ)ᵀ` on wasm) and
 * `db = Σ dy`. Used by {@link linear}.
 *
 * @example
 * ```ts
 * linear2d(tf.ones([2, 3]), tf.ones([3, 4]), tf.zeros([4])).shape; // [2, 4]
 * ```
 */
export function linear2d(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null): tf.Tensor2D {
  const wasm = onSlowMatMulWasm();
  const inputs = bias ? [x, kernel, bias] : [x, kernel];
  return lazyGradOp(
    inputs,
    () => (wasm ? blockedMatMul(x, kernel, bias) : tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel as tf.Tensor2D, bias: bias ?? undefined })),
    (dy, [xs, ks]) => {
      const g: Thunk[] = [() => gradInput(dy, ks!, wasm), () => matMulAT(xs!, dy, wasm)];
      return bias ? [...g, () => sumRows(dy)] : g;
    },
  ) as tf.Tensor2D;
}

/**
 * `a · bᵀ` for 2-D `a` `[m, k]` and a large `b` `[n, k]` (a tied output layer: the hidden
 * states times the `[vocab, D]` embedding table). On stock wasm, a transpose flag sends matMul
 * off XNNPACK (measured `[64, 768] · [50257, 768]ᵀ`: 1.6 s against 0.15 s without the flag), and
 * transposing `b` would copy the whole table on every call; this computes `(b · aᵀ)ᵀ`, which
 * transposes only `a` and the output (`m·(k + n)` elements) and keeps no second copy of `b`.
 * Elsewhere it is the flagged matMul. Gradients: `da = dy · b` (no flag), `db = dyᵀ · a`, each
 * computed only when needed.
 *
 * @example
 * ```ts
 * matMulTransposedB(tf.ones([2, 3]), tf.ones([5, 3])).shape; // [2, 5]
 * ```
 */
export function matMulTransposedB(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[1]) {
    throw new Error(`matMulTransposedB: expected a [m, k] and b [n, k], got a [${a.shape}] and b [${b.shape}]`);
  }
  const wasm = onSlowMatMulWasm();
  return lazyGradOp(
    [a, b],
    () => {
      if (!wasm) return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true);
      const [m, k] = a.shape as [number, number];
      // One row (a decode step): aᵀ and the output are vectors, so reshapes, not transposes.
      if (m === 1) return tf.reshape(tf.matMul(b as tf.Tensor2D, tf.reshape(a, [k, 1]) as tf.Tensor2D), [1, b.shape[0]!]);
      return tf.transpose(tf.matMul(b as tf.Tensor2D, tf.transpose(a as tf.Tensor2D)));
    },
    (dy, [as, bs]) => [() => tf.matMul(dy as tf.Tensor2D, bs as tf.Tensor2D), () => matMulAT(dy, as!, wasm)],
  ) as tf.Tensor2D;
}
