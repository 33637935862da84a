import * as tf from '@tensorflow/tfjs-core';

/**
 * A worker's memory, from {@link DataParallel.workerMemory}: its `tf.memory()` counts, and the
 * size of its wasm heap.
 *
 * @example
 * ```ts
 * const [first] = await dp.workerMemory();
 * console.log(first.numTensors, first.wasmHeapBytes);
 * ```
 */
export interface WorkerMemory {
  /** Live tensors in the worker (its parameters included): constant from call to call unless something leaks. */
  numTensors: number;
  /** Data buffers in the worker's backend. */
  numDataBuffers: number;
  /** Bytes held by the worker's tensors. */
  numBytes: number;
  /** The worker's wasm heap in bytes (its high-water mark: it never shrinks); null off the wasm backend. */
  wasmHeapBytes: number | null;
}

/** This thread's {@link WorkerMemory}. */
export function memoryOfThisThread(): WorkerMemory {
  const { numTensors, numDataBuffers, numBytes } = tf.memory();
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return { numTensors, numDataBuffers, numBytes, wasmHeapBytes: heap ? heap.length : null };
}
