import * as tf from '@tensorflow/tfjs-core';

// The parts of the wasm backend (`BackendWasm`) the kernels below use.
interface WasmBackendLike {
  incRef(dataId: tf.DataId): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

/**
 * `Slice` reading the input in place. The stock wasm kernel first copies the WHOLE input out
 * of the heap (`readSync`) for every slice, so `unstack`/`split` of an `[n, ...]` tensor costs
 * n full copies (measured: 265 ms to unstack three `[64, …]` tensors). This one copies only
 * the sliced rows: contiguous runs straight from a heap view to a heap view.
 */
function sliceInPlace(x: tf.TensorInfo, begin: number[], size: number[], backend: WasmBackendLike): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const n = size.reduce((a, b) => a * b, 1);
  if (n === 0) return out;
  // Views only after makeOutput: a heap growth there detaches older ArrayBuffers.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const shape = x.shape;
  const rank = shape.length;
  const strides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; s *= shape[i]!, i--) strides[i] = s;
  // The innermost axes that are taken whole, plus the last partial one, form one contiguous run.
  let k = rank - 1;
  while (k > 0 && size[k] === shape[k]) k--;
  const run = k < 0 ? n : size.slice(k).reduce((a, b) => a * b, 1);
  const base = begin.reduce((acc, b, i) => acc + b * strides[i]!, 0);
  if (run === n) {
    dst.set(src.subarray(base, base + n));
    return out;
  }
  const idx = new Array<number>(k).fill(0); // odometer over the axes before k
  for (let o = 0; o < n; o += run) {
    let off = base;
    for (let i = 0; i < k; i++) off += idx[i]! * strides[i]!;
    dst.set(src.subarray(off, off + run), o);
    for (let i = k - 1; i >= 0 && ++idx[i]! === size[i]!; i--) idx[i] = 0;
  }
  return out;
}

/**
 * `Tile` by copying runs: the innermost axis is copied as one run and repeated, then each outer
 * axis repeats the block built below it, by doubling `copyWithin`. The stock wasm kernel
 * computes an index per element: ~100 ns each (800 ms to broadcast one attention mask of
 * Flamingo's cross-attention benchmark to `[8, 8, 1024, 320]`).
 */
function tileByRuns(x: tf.TensorInfo, reps: number[], backend: WasmBackendLike): tf.TensorInfo {
  const shape = x.shape;
  const rank = shape.length;
  const outShape = shape.map((d, i) => d * reps[i]!);
  const out = backend.makeOutput(outShape, x.dtype);
  if (outShape.some((d) => d === 0)) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const inStride = new Array<number>(rank);
  const outStride = new Array<number>(rank);
  for (let i = rank - 1, s = 1, o = 1; i >= 0; s *= shape[i]!, o *= outShape[i]!, i--) {
    inStride[i] = s;
    outStride[i] = o;
  }
  // Fills dst[to, to + outStride[d-1]) — the block of axis d and below — from src at `from`.
  const fill = (d: number, from: number, to: number) => {
    if (d === rank - 1) dst.set(src.subarray(from, from + shape[d]!), to);
    else for (let i = 0; i < shape[d]!; i++) fill(d + 1, from + i * inStride[d]!, to + i * outStride[d]!);
    const block = shape[d]! * outStride[d]!;
    const total = block * reps[d]!;
    for (let done = block; done < total; done *= 2) dst.copyWithin(to + done, to, to + Math.min(done, total - done));
  };
  if (rank === 0) dst[0] = src[0]!;
  else fill(0, 0, 0);
  return out;
}

/**
 * `GatherV2` by copying runs: each gathered slice (the axes after `axis`) is one contiguous run,
 * copied whole. The stock wasm kernel computes an index per element: ~25 ns each (7.5 ms to
 * pick a batch of 16 images' `[98, 192]` tokens, 5 ms for an embedding lookup of 800 tokens).
 */
function gatherByRuns(x: tf.TensorInfo, indices: tf.TensorInfo, axis: number, batchDims: number, backend: WasmBackendLike): tf.TensorInfo {
  const { batchSize, outerSize, dimSize, sliceSize, outputShape } = tf.backend_util.segment_util.collectGatherOpShapeInfo(
    x as tf.Tensor, indices as tf.Tensor, axis, batchDims,
  );
  // The stock kernel's check and message, before anything is allocated.
  const ids = backend.typedArrayFromHeap(indices);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id <= dimSize - 1)) throw new Error(`GatherV2: the index value ${id} is not in [0, ${dimSize - 1}]`);
  }
  const perBatch = ids.length / Math.max(batchSize, 1);
  const out = backend.makeOutput(outputShape, x.dtype);
  if (tf.util.sizeFromShape(outputShape) === 0) return out;
  // Views only after makeOutput: a heap growth there detaches older ArrayBuffers.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const at = backend.typedArrayFromHeap(indices);
  let o = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let i = 0; i < outerSize; i++) {
      const base = (b * outerSize + i) * dimSize;
      for (let j = 0; j < perBatch; j++, o += sliceSize) {
        const from = (base + at[b * perBatch + j]!) * sliceSize;
        if (sliceSize >= 64) dst.set(src.subarray(from, from + sliceSize), o);
        else for (let k = 0; k < sliceSize; k++) dst[o + k] = src[from + k]!;
      }
    }
  }
  return out;
}

let installed = false;

/**
 * Replaces six wasm backend kernels with faster ones (same results, bit for bit; strings
 * still go to the stock kernels): `Slice`, `Unpack` and `SplitV` read the input in place
 * instead of copying all of it per output, `Tile` (also `tf.broadcastTo`) and `GatherV2`
 * (`tf.gather`, so every embedding lookup) copy runs instead of computing an index per
 * element, and `Identity` (`tf.clone`, and the tape saving every
 * tensor a gradient needs) shares the data as the cpu backend does instead of copying. Also
 * makes `Transpose` of an empty tensor (a batch of 0 rows) return an empty tensor, as on the
 * other backends, instead of trapping with `RuntimeError: divide by zero`.
 * Idempotent and cheap; `@vlm/core` calls it on its hot paths when the active backend is wasm,
 * so calling it yourself is only needed to speed up your own `tf.slice`/`tf.unstack`/
 * `tf.split`/`tf.tile`/`tf.gather` calls before the first `@vlm` op runs.
 *
 * Does nothing until the wasm backend package has registered its kernels.
 *
 * @example
 * ```ts
 * await tf.setBackend('wasm');
 * installFastWasmKernels();
 * tf.unstack(tf.zeros([64, 257, 128])); // 64 copies of one row each, not of the whole input
 * ```
 */
export function installFastWasmKernels(): void {
  if (installed) return;
  const stock = {
    Identity: tf.getKernel('Identity', 'wasm'),
    Slice: tf.getKernel('Slice', 'wasm'),
    Unpack: tf.getKernel('Unpack', 'wasm'),
    SplitV: tf.getKernel('SplitV', 'wasm'),
    Tile: tf.getKernel('Tile', 'wasm'),
    Transpose: tf.getKernel('Transpose', 'wasm'),
    GatherV2: tf.getKernel('GatherV2', 'wasm'),
  };
  if (!Object.values(stock).every(Boolean)) return;
  installed = true;
  const replace = (kernelName: keyof typeof stock, kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]) => {
    const fallback = stock[kernelName]!.kernelFunc as unknown as (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: ((args: KernelArgs) => (Object.values(args.inputs)[0]!.dtype === 'string' ? fallback(args) : kernelFunc(args))) as unknown as tf.KernelFunc,
    });
  };
  // Identity (what tf.clone runs, and what the tape runs to save every tensor a gradient
  // needs) shares the data, as the cpu backend's does, instead of copying it: tensors are
  // immutable and the backend reference-counts data. The copies were the weights (again)
  // and every saved activation of every training step.
  replace('Identity', ({ inputs, backend }) => {
    const x = inputs.x!;
    (backend as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  // Transpose of an empty tensor (a batch of 0 rows): the stock kernel traps with
  // `RuntimeError: divide by zero`; the result is an empty tensor of the permuted shape.
  const stockTranspose = stock.Transpose!.kernelFunc as unknown as (args: KernelArgs) => tf.TensorInfo;
  replace('Transpose', (args) => {
    const x = args.inputs.x!;
    if (x.shape.some((d) => d === 0)) {
      const perm = args.attrs!.perm as number[];
      return (args.backend as WasmBackendLike).makeOutput(perm.map((p) => x.shape[p]!), x.dtype);
    }
    return stockTranspose(args);
  });
  replace('GatherV2', ({ inputs, attrs, backend }) =>
    gatherByRuns(inputs.x!, inputs.indices!, tf.util.parseAxisParam(attrs!.axis as number, inputs.x!.shape)[0]!, attrs!.batchDims as number, backend as WasmBackendLike),
  );
  replace('Tile', ({ inputs, attrs, backend }) => tileByRuns(inputs.x!, attrs!.reps as number[], backend as WasmBackendLike));
  replace('Slice', ({ inputs, attrs, backend }) => {
    const x = inputs.x!;
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs!.begin as number[], attrs!.size as number[]);
    return sliceInPlace(x, begin, size, backend as WasmBackendLike);
  });
  replace('Unpack', ({ inputs, attrs, backend }) => {
    const x = inputs.value!;
    const axis = ((attrs!.axis as number) + x.shape.length) % x.shape.length;
    const outShape = x.shape.filter((_, i) => i !== axis);
    const begin = x.shape.map(() => 0);
    const size = x.shape.map((d, i) => (i === axis ? 1 : d));
    return Array.from({ length: x.shape[axis]! }, (_, i) => {
      begin[axis] = i;
      return { ...sliceInPlace(x, begin, size, backend as WasmBackendLike), shape: outShape };
    });
  });
  replace('SplitV', ({ inputs, attrs, backend }) => {
    const x = inputs.x!;
    const axis = tf.util.parseAxisParam(attrs!.axis as number, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs!.numOrSizeSplits as number[] | number, axis);
    const begin = x.shape.map(() => 0);
    return sizes.map((s) => {
      const out = sliceInPlace(x, begin, x.shape.map((d, i) => (i === axis ? s : d)), backend as WasmBackendLike);
      begin[axis] += s;
      return out;
    });
  });
}

/** Whether the active backend is wasm (then the fast kernels are installed on first use). */
export function onWasm(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  installFastWasmKernels();
  return true;
}

const fastMatMulBackends = new Set<string>();

/**
 * Tells `@vlm/core` whether `backendName`'s matMul kernels run transposed and batched products
 * at full speed (as `@vlm/native-matmul`'s do; that package calls this for you). On wasm,
 * `@vlm/core` otherwise works around its stock matMul, whose only fast case is a 2-D product
 * without transpose flags: explicit transposes in gradients, attention as a loop over heads,
 * big kernels in column blocks. With fast kernels those workarounds only cost time.
 *
 * @example
 * ```ts
 * setFastMatMulBackend('wasm', true); // your own kernels are registered for 'wasm'
 * ```
 */
export function setFastMatMulBackend(backendName: string, fast: boolean): void {
  if (fast) fastMatMulBackends.add(backendName);
  else fastMatMulBackends.delete(backendName);
}

/**
 * Whether the active backend is stock wasm, whose matMul is only fast for 2-D products without
 * transpose flags (the fast wasm kernels of `wasm-kernels.ts` are installed on first use).
 */
export function onSlowMatMulWasm(): boolean {
  return onWasm() && !fastMatMulBackends.has('wasm');
}
