import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { lazyGradOp } from './lazy-grad';
import { hasKernels } from './optional-kernels';

/** Which GELU: `'none'` is the exact erf form (PyTorch's default), `'tanh'` the approximation. */
export type GeluApproximation = 'none' | 'tanh';

/**
 * Name of an optional kernel `{ x } → GELU(x)` (exact, float32) that a package may register for
 * a backend (as `@vlm/native-matmul` does for wasm and cpu in Node). Where it and
 * {@link GELU_GRAD_KERNEL} are registered for the active backend, {@link gelu} runs them
 * instead of its five elementwise kernels (and their gradients).
 */
export const GELU_KERNEL = 'VlmGelu';
/** Name of the optional kernel `{ dy, x } → dy·GELU'(x)` (exact, float32) paired with {@link GELU_KERNEL}. */
export const GELU_GRAD_KERNEL = 'VlmGeluGrad';
/**
 * Name of an optional kernel `{ x } → GELU(x)` in the tanh form (float32), which {@link gelu}
 * runs for `approximate: 'tanh'` (GPT-2's `gelu_new`) where it and {@link GELU_TANH_GRAD_KERNEL}
 * are registered for the active backend (as `@vlm/native-matmul` does for wasm and cpu in Node),
 * instead of its nine elementwise kernels (and their gradients).
 */
export const GELU_TANH_KERNEL = 'VlmGeluTanh';
/** Name of the optional kernel `{ dy, x } → dy·GELU'(x)` (tanh form, float32) paired with {@link GELU_TANH_KERNEL}. */
export const GELU_TANH_GRAD_KERNEL = 'VlmGeluTanhGrad';

/** The optional forward and gradient kernels of each form. */
const KERNELS: Record<GeluApproximation, readonly [string, string]> = {
  none: [GELU_KERNEL, GELU_GRAD_KERNEL],
  tanh: [GELU_TANH_KERNEL, GELU_TANH_GRAD_KERNEL],
};

/**
 * GELU, as `torch.nn.functional.gelu(x, approximate)`:
 * exact `0.5·x·(1 + erf(x/√2))`, or `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
 * A float32 `x` runs as one kernel forward and one backward where the form's optional kernels
 * are registered for the backend ({@link GELU_KERNEL} and {@link GELU_GRAD_KERNEL}, or
 * {@link GELU_TANH_KERNEL} and {@link GELU_TANH_GRAD_KERNEL}).
 *
 * @example
 * ```ts
 * gelu(tf.tensor1d([-1, 0, 1])); // [-0.1587, 0, 0.8413]
 * ```
 */
export function gelu(x: tf.Tensor, approximate: GeluApproximation = 'none'): tf.Tensor {
  if (approximate !== 'none' && approximate !== 'tanh') throw new Error(`gelu: expected approximate 'none' or 'tanh', got '${approximate}'`);
  const [kernel, gradKernel] = KERNELS[approximate];
  if (x.dtype === 'float32' && hasKernels([kernel, gradKernel])) {
    const engine = tf.engine();
    return lazyGradOp(
      [x],
      () => engine.runKernel(kernel, { x }) as tf.Tensor,
      (dy, [xs]) => [() => engine.runKernel(gradKernel, { dy, x: xs! }) as tf.Tensor],
    );
  }
  return tf.tidy(() => {
    if (approximate === 'tanh') {
      const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x)))));
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
    }
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
  });
}

/**
 * {@link gelu} as a weightless module, so it can sit in a {@link Sequential} at the index
 * PyTorch gives `nn.GELU()` (which keeps the state-dict keys of its neighbours aligned).
 */
export class GELU extends Module {
  /** @param approximate `'none'` (exact erf, the default) or `'tanh'`. */
  constructor(
    /** Which GELU this module applies. */
    readonly approximate: GeluApproximation = 'none',
  ) {
    super();
  }

  /** Elementwise GELU. */
  forward(x: tf.Tensor): tf.Tensor {
    return gelu(x, this.approximate);
  }
}
