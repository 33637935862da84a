import * as tf from '@tensorflow/tfjs-core';
import type { NativeBinding } from './binding';

type Memory = ArrayBuffer | Float32Array;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };
type KernelImpl = (args: KernelArgs) => tf.TensorInfo;

/** Where tensors live on a backend, and how an output is made there. */
interface Storage {
  /** The memory holding `t` and the byte offset of its first element. */
  locate(t: tf.TensorInfo): [Memory, number];
  /** Allocates a float32 output, lets `fill` write it (memory, byte offset), returns it. */
  output(shape: number[], fill: (memory: Memory, offset: number) => void): tf.TensorInfo;
}

// The wasm backend: every tensor is a byte offset into the one heap. Read the heap's buffer only
// after allocating the output: growing the heap detaches the old ArrayBuffer.
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
const wasmStorage = (backend: WasmBackendLike): Storage => ({
  locate: (t) => [backend.wasm.HEAPU8.buffer as ArrayBuffer, backend.dataIdMap.get(t.dataId).memoryOffset],
  output(shape, fill) {
    const out = backend.makeOutput(shape, 'float32');
    fill(backend.wasm.HEAPU8.buffer as ArrayBuffer, backend.dataIdMap.get(out.dataId).memoryOffset);
    return out;
  },
});

// The cpu backend: every tensor is a JS typed array.
interface CpuBackendLike {
  data: { get(id: tf.DataId): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}
const cpuStorage = (backend: CpuBackendLike): Storage => ({
  locate: (t) => [backend.data.get(t.dataId).values as Float32Array, 0],
  output(shape, fill) {
    const values = new Float32Array(tf.util.sizeFromShape(shape));
    fill(values, 0);
    return backend.makeTensorInfo(shape, 'float32', values);
  },
});

/** The backends the native kernels can serve, with how each stores tensors. */
export const STORAGES: Record<string, (backend: unknown) => Storage> = {
  wasm: (b) => wasmStorage(b as WasmBackendLike),
  cpu: (b) => cpuStorage(b as CpuBackendLike),
};

/**
 * The native product for the cases it covers — float32, batch dims equal or one side a single
 * matrix (the cases the stock wasm kernel covers too), a bias that is one row of `n` — or
 * `null` for the stock kernel to take.
 */
function nativeProduct(
  native: NativeBinding, storage: Storage, a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | undefined,
  transposeA: boolean, transposeB: boolean,
): tf.TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) return null;
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const [m, k] = transposeA ? [a.shape[ra - 1]!, a.shape[ra - 2]!] : [a.shape[ra - 2]!, a.shape[ra - 1]!];
  const [kb, n] = transposeB ? [b.shape[rb - 1]!, b.shape[rb - 2]!] : [b.shape[rb - 2]!, b.shape[rb - 1]!];
  if (k !== kb) return null; // the stock kernel throws its own error
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (bias && (tf.util.sizeFromShape(bias.shape) !== n || bias.shape[bias.shape.length - 1] !== n)) return null;
  const batch = Math.max(batchA, batchB);
  return storage.output([...outer, m, n], (c, cOffset) => {
    if (batch * m * n === 0) return;
    const [am, aOffset] = storage.locate(a);
    const [bm, bOffset] = storage.locate(b);
    const [biasMemory, biasOffset] = bias ? storage.locate(bias) : [null, 0];
    native.sgemm(am, aOffset, bm, bOffset, c, cOffset, biasMemory, biasOffset, batch, m, n, k,
      +transposeA, +transposeB, batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n);
  });
}

/** `BatchMatMul` through the addon, else the stock kernel. */
export function batchMatMulKernel(native: NativeBinding, storage: (backend: unknown) => Storage, stock: KernelImpl): KernelImpl {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    return nativeProduct(native, storage(args.backend), a, b, undefined, transposeA, transposeB) ?? stock(args);
  };
}

/** `_FusedMatMul` (bias, no activation) through the addon, else the stock kernel. */
export function fusedMatMulKernel(native: NativeBinding, storage: (backend: unknown) => Storage, stock: KernelImpl): KernelImpl {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    if (preluActivationWeights || (activation && activation !== 'linear')) return stock(args);
    return nativeProduct(native, storage(args.backend), a!, b!, bias, transposeA, transposeB) ?? stock(args);
  };
}
