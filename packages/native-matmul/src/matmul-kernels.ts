import * as tf from '@tensorflow/tfjs-core';
import type { NativeBinding } from './binding';

type Memory = ArrayBuffer | Float32Array;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };
export type KernelImpl = (args: KernelArgs) => tf.TensorInfo;

/** Where tensors live on a backend, and how an output is made there. */
export interface Storage {
  /** The memory holding `t` and the byte offset of its first element. */
  locate(t: tf.TensorInfo): [Memory, number];
  /** Allocates a float32 output, lets `fill` write it (memory, byte offset), returns it. */
  output(shape: number[], fill: (memory: Memory, offset: number) => void): tf.TensorInfo;
  /** Allocates several float32 outputs, lets `fill` write them (memory and byte offset of each), returns them. */
  outputs(shapes: number[][], fill: (at: Array<[Memory, number]>) => void): tf.TensorInfo[];
}

/** A storage's single `output`: its `outputs` with one shape. */
const withOutput = (s: Omit<Storage, 'output'>): Storage => ({
  ...s,
  output: (shape, fill) => s.outputs([shape], ([at]) => fill(...at!))[0]!,
});

// The wasm backend: every tensor is a byte offset into the one heap. Read the heap's buffer only
// after allocating the output: growing the heap detaches the old ArrayBuffer.
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
const wasmStorage = (backend: WasmBackendLike): Storage => withOutput({
  locate: (t) => [backend.wasm.HEAPU8.buffer as ArrayBuffer, backend.dataIdMap.get(t.dataId).memoryOffset],
  outputs(shapes, fill) {
    const outs = shapes.map((shape) => backend.makeOutput(shape, 'float32'));
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    fill(outs.map((out) => [heap, backend.dataIdMap.get(out.dataId).memoryOffset]));
    return outs;
  },
});

// The cpu backend: every tensor is a JS typed array. A float32 tensor's array is not always a
// Float32Array: cast(bool → float32) keeps the bool's Uint8Array (a padded batch's mask), so
// such values are converted (a copy of that operand only) rather than handed to the addon.
interface CpuBackendLike {
  data: { get(id: tf.DataId): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}
const asFloat32 = (values: unknown): Float32Array =>
  values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
const cpuStorage = (backend: CpuBackendLike): Storage => withOutput({
  locate: (t) => [asFloat32(backend.data.get(t.dataId).values), 0],
  outputs(shapes, fill) {
    const values = shapes.map((shape) => new Float32Array(tf.util.sizeFromShape(shape)));
    fill(values.map((v) => [v, 0]));
    return shapes.map((shape, i) => backend.makeTensorInfo(shape, 'float32', values[i]!));
  },
});

/** The backends the native kernels can serve, with how each stores tensors. */
export const STORAGES: Record<string, (backend: unknown) => Storage> = {
  wasm: (b) => wasmStorage(b as WasmBackendLike),
  cpu: (b) => cpuStorage(b as CpuBackendLike),
};

/**
 * For each output matrix of a batched product with batch dims `outer`, the index of the input
 * matrix (batch dims `shape`, broadcast to `outer`) it reads.
 */
function broadcastIndex(shape: number[], outer: number[]): number[] {
  const padded = [...new Array<number>(outer.length - shape.length).fill(1), ...shape];
  const index = new Array<number>(tf.util.sizeFromShape(outer));
  for (let i = 0; i < index.length; i++) {
    let rest = i, at = 0, stride = 1;
    for (let d = outer.length - 1; d >= 0; d--) {
      const coord = rest % outer[d]!;
      rest = (rest - coord) / outer[d]!;
      if (padded[d] !== 1) at += coord * stride;
      stride *= padded[d]!;
    }
    index[i] = at;
  }
  return index;
}

/**
 * The native product for the cases it covers — float32, any batch broadcasting, a bias that is
 * one row of `n` — or `null` for the stock kernel to take.
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
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null; // the stock kernel throws its own error
  }
  if (bias && (tf.util.sizeFromShape(bias.shape) !== n || bias.shape[bias.shape.length - 1] !== n)) return null;
  const batchA = tf.util.sizeFromShape(outerA), batchB = tf.util.sizeFromShape(outerB);
  const batch = tf.util.sizeFromShape(outer);
  return storage.output([...outer, m, n], (c, cOffset) => {
    if (batch * m * n === 0) return;
    const [am, aOffset] = storage.locate(a);
    const [bm, bOffset] = storage.locate(b);
    const [biasMemory, biasOffset] = bias ? storage.locate(bias) : [null, 0];
    // `count` products from the a, b, c matrices `at` on (element indices), a and b stepping by `step`.
    const run = (aAt: number, bAt: number, cAt: number, count: number, stepA: number, stepB: number) =>
      native.sgemm(am, aOffset + 4 * aAt, bm, bOffset + 4 * bAt, c, cOffset + 4 * cAt, biasMemory, biasOffset,
        count, m, n, k, +transposeA, +transposeB, stepA, stepB);
    if ((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1)) {
      // Equal batch dims, or one side a single matrix: one call.
      run(0, 0, 0, batch, batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n);
      return;
    }
    // General broadcasting ([2,1]·[1,5]; the stock kernels get it wrong): one call per index of
    // the leading batch dims, covering the last batch dim.
    const ia = broadcastIndex(outerA, outer), ib = broadcastIndex(outerB, outer);
    const last = outer[outer.length - 1]!;
    const stepA = (outerA[outerA.length - 1] ?? 1) === 1 ? 0 : m * k;
    const stepB = (outerB[outerB.length - 1] ?? 1) === 1 ? 0 : k * n;
    for (let i = 0; i < batch; i += last) run(ia[i]! * m * k, ib[i]! * k * n, i * m * n, last, stepA, stepB);
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
