import * as tf from '@tensorflow/tfjs-core';
import {
  GELU_GRAD_KERNEL, GELU_KERNEL, GELU_TANH_GRAD_KERNEL, GELU_TANH_KERNEL, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL, LAYER_NORM_PARAM_GRAD_KERNEL, setFastMatMulBackend,
} from '@vlm/core';
import { loadBinding } from './binding';
import { STORAGES, batchMatMulKernel, fusedMatMulKernel } from './matmul-kernels';
import { geluGradKernel, geluKernel, geluTanhGradKernel, geluTanhKernel } from './gelu-kernels';
import { layerNormGradKernel, layerNormKernel, layerNormParamGradKernel } from './layer-norm-kernels';
import { OPTIONAL_NATIVE_KERNELS, type OptionalNativeKernel } from './optional-kernels';

/**
 * Options of {@link enableNativeMatMul}. Beside `threads` and `backends`, one switch per
 * optional kernel set, named as in {@link OPTIONAL_NATIVE_KERNELS} (default: `true`):
 *
 * - `gelu`: also register the native GELU, both forms, forward and gradient (`@vlm/core`'s
 *   `GELU_KERNEL` and `GELU_GRAD_KERNEL` for the exact one, `GELU_TANH_KERNEL` and
 *   `GELU_TANH_GRAD_KERNEL` for the tanh form, which core's `gelu` then runs instead of five or
 *   nine elementwise kernels);
 * - `layerNorm`: also register the native LayerNorm, forward and gradients (`@vlm/core`'s
 *   `LAYER_NORM_KERNEL`, `LAYER_NORM_GRAD_KERNEL` and `LAYER_NORM_PARAM_GRAD_KERNEL`, which
 *   core's `LayerNorm` then runs instead of its composed elementwise kernels).
 *
 * {@link nativeKernelsWithout} turns a list of sets to leave out into these switches.
 */
export interface NativeMatMulOptions extends Partial<Record<OptionalNativeKernel, boolean>> {
  /** Threads each product runs on (the calling thread included). Default: every CPU. */
  threads?: number;
  /** Backends whose matMul kernels to replace. Default: `['wasm', 'cpu']`, those registered. */
  backends?: Array<'wasm' | 'cpu'>;
}

/**
 * What {@link enableNativeMatMul} set up: the micro-kernel, the threads, the backends, and for
 * each optional kernel set ({@link OPTIONAL_NATIVE_KERNELS}: `gelu`, `layerNorm`) whether it is
 * registered on those backends.
 */
export interface NativeMatMulInfo extends Record<OptionalNativeKernel, boolean> {
  /** The micro-kernel picked for this CPU. */
  isa: 'avx512' | 'avx2' | 'generic';
  /** Threads each product runs on. */
  threads: number;
  /** Backends whose `BatchMatMul` and `_FusedMatMul` kernels are now native. */
  backends: string[];
}

type Kernel = ReturnType<typeof tf.getKernel>;
const KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;
const stockKernels = new Map<string, Kernel>(); // `${backend}/${kernel}` → the kernel replaced
type Storages = (backend: unknown) => ReturnType<(typeof STORAGES)[string]>;
type Factory = (native: ReturnType<typeof loadBinding>, storage: Storages) => unknown;
/** The optional kernels beside the matMul, by option: kernel name → implementation. */
const EXTRA_KERNELS: Record<OptionalNativeKernel, Array<[string, Factory]>> = {
  gelu: [[GELU_KERNEL, geluKernel], [GELU_GRAD_KERNEL, geluGradKernel], [GELU_TANH_KERNEL, geluTanhKernel], [GELU_TANH_GRAD_KERNEL, geluTanhGradKernel]],
  layerNorm: [[LAYER_NORM_KERNEL, layerNormKernel], [LAYER_NORM_GRAD_KERNEL, layerNormGradKernel], [LAYER_NORM_PARAM_GRAD_KERNEL, layerNormParamGradKernel]],
};
const extraBackends = new Set<string>(); // backends where some of them may be registered

function unregisterExtras(backend: string): void {
  for (const group of Object.values(EXTRA_KERNELS)) {
    for (const [name] of group) if (tf.getKernel(name, backend)) tf.unregisterKernel(name, backend);
  }
  extraBackends.delete(backend);
}

/**
 * Replaces the `BatchMatMul` and `_FusedMatMul` kernels of TF.js's wasm and cpu backends with a
 * native multi-threaded GEMM (AVX-512, AVX2 or portable C, picked for the CPU), in Node. Every
 * product that goes through `tf.matMul`, `tf.fused.matMul` or an `@vlm` module then runs there:
 * transposed and batched products at full speed, on all cores, with any batch broadcasting
 * (`[2,1,m,k]·[1,5,k,n]`, which the stock kernels get wrong). The cases it does not cover
 * (dtypes other than float32, fused activations other than linear, a bias that is not one row
 * of `n` values) go to the stock kernels, as does everything else. It also registers a native
 * GELU (exact and tanh form), forward and gradient, that `@vlm/core`'s `gelu` uses (option `gelu`), and a native
 * LayerNorm, forward and gradients, that core's `LayerNorm` uses (option `layerNorm`). Call it after the backends
 * are registered (importing `@tensorflow/tfjs-backend-wasm`); calling it again changes the
 * thread count.
 *
 * Results match the stock kernels to float32 rounding (summation order differs).
 *
 * @throws Error when the addon is not built (see {@link nativeMatMulAvailable}).
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-wasm';
 * import { enableNativeMatMul } from '@vlm/native-matmul';
 * await tf.setBackend('wasm');
 * enableNativeMatMul({ threads: 2 }); // { isa: 'avx512', threads: 2, backends: ['wasm', 'cpu'], gelu: true, layerNorm: true }
 * ```
 */
export function enableNativeMatMul(options: NativeMatMulOptions = {}): NativeMatMulInfo {
  const native = loadBinding();
  const cpus = native.info().cpus;
  const wanted = options.threads ?? cpus;
  if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`enableNativeMatMul: threads must be a positive integer, got ${wanted}`);
  const requested = options.backends ?? ['wasm', 'cpu'];
  const extras = Object.fromEntries(OPTIONAL_NATIVE_KERNELS.map((k) => [k, options[k] ?? true])) as Record<OptionalNativeKernel, boolean>;
  // Check them all before replacing any kernel: a bad option leaves everything as it was.
  for (const backend of requested) {
    if (!Object.hasOwn(STORAGES, backend)) throw new Error(`enableNativeMatMul: backends can be 'wasm' or 'cpu', got '${backend}'`);
  }
  const threads = native.setThreads(wanted);
  const backends: string[] = [];
  for (const backend of requested) {
    const storage = STORAGES[backend]!;
    for (const kernelName of KERNELS) {
      const key = `${backend}/${kernelName}`;
      const stock = stockKernels.get(key) ?? tf.getKernel(kernelName, backend);
      if (!stock) continue; // backend not registered
      stockKernels.set(key, stock);
      const fallback = stock.kernelFunc as unknown as Parameters<typeof batchMatMulKernel>[2];
      const kernelFunc = (kernelName === 'BatchMatMul' ? batchMatMulKernel : fusedMatMulKernel)(native, storage, fallback);
      tf.unregisterKernel(kernelName, backend);
      tf.registerKernel({ ...stock, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
    }
    if (stockKernels.has(`${backend}/BatchMatMul`)) {
      backends.push(backend);
      setFastMatMulBackend(backend, true);
      unregisterExtras(backend);
      for (const option of OPTIONAL_NATIVE_KERNELS) {
        if (!extras[option]) continue;
        for (const [kernelName, factory] of EXTRA_KERNELS[option]) {
          tf.registerKernel({ kernelName, backendName: backend, kernelFunc: factory(native, storage) as tf.KernelFunc });
        }
        extraBackends.add(backend);
      }
    }
  }
  return { isa: native.info().isa, threads, backends, ...extras };
}

/**
 * Puts the stock matMul kernels back (and `@vlm/core`'s workarounds for their slow paths), and
 * removes the native GELU and LayerNorm kernels (core's `gelu` and `LayerNorm` compose stock
 * kernels again).
 *
 * @example
 * ```ts
 * enableNativeMatMul();
 * disableNativeMatMul(); // tf.matMul runs on the stock kernels again
 * ```
 */
export function disableNativeMatMul(): void {
  for (const [key, stock] of stockKernels) {
    const [backend, kernelName] = key.split('/') as [string, string];
    tf.unregisterKernel(kernelName, backend);
    tf.registerKernel(stock!);
    setFastMatMulBackend(backend, false);
  }
  stockKernels.clear();
  for (const backend of [...extraBackends]) unregisterExtras(backend);
}

/**
 * Whether the native addon is built and loads here (it is compiled when the package is
 * installed, and skipped with a warning where no compiler is found).
 *
 * @example
 * ```ts
 * if (nativeMatMulAvailable()) enableNativeMatMul();
 * ```
 */
export function nativeMatMulAvailable(): boolean {
  try {
    loadBinding();
    return true;
  } catch {
    return false;
  }
}
