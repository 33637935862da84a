export { enableNativeMatMul, disableNativeMatMul, nativeMatMulAvailable } from './native-matmul';
export type { NativeMatMulOptions, NativeMatMulInfo } from './native-matmul';
