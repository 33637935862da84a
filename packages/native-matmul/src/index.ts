/**
 * An optional native matMul for TensorFlow.js in Node: a multi-threaded GEMM (N-API addon,
 * AVX-512 / AVX2 / portable C) that replaces the `BatchMatMul` and `_FusedMatMul` kernels of
 * the wasm and cpu backends ({@link enableNativeMatMul}, {@link disableNativeMatMul}). The
 * addon is compiled at install; where that failed, {@link nativeMatMulAvailable} returns
 * `false` and TF.js keeps its stock kernels. The optional kernel sets it also registers are
 * named in {@link OPTIONAL_NATIVE_KERNELS}; {@link parseNativeWithout} and
 * {@link nativeKernelsWithout} turn a command line's `--native-without` list of them into
 * options (pure TypeScript: they work where the addon is not built).
 *
 * @packageDocumentation
 */
export { enableNativeMatMul, disableNativeMatMul, nativeMatMulAvailable } from './native-matmul';
export type { NativeMatMulOptions, NativeMatMulInfo } from './native-matmul';
export { OPTIONAL_NATIVE_KERNELS, parseNativeWithout, nativeKernelsWithout } from './optional-kernels';
export type { OptionalNativeKernel } from './optional-kernels';
