/**
 * An optional native matMul for TensorFlow.js in Node: a multi-threaded GEMM (N-API addon,
 * AVX-512 / AVX2 / portable C) that replaces the `BatchMatMul` and `_FusedMatMul` kernels of
 * the wasm and cpu backends ({@link enableNativeMatMul}, {@link disableNativeMatMul}). The
 * addon is compiled at install; where that failed, {@link nativeMatMulAvailable} returns
 * `false` and TF.js keeps its stock kernels.
 *
 * @packageDocumentation
 */
export { enableNativeMatMul, disableNativeMatMul, nativeMatMulAvailable } from './native-matmul';
export type { NativeMatMulOptions, NativeMatMulInfo } from './native-matmul';
