import * as tf from '@tensorflow/tfjs-core';

/** The most memory a wasm32 heap can address: 4 GiB (TF.js's wasm backend grows up to it). */
export const WASM_HEAP_LIMIT_BYTES = 4 * 1024 ** 3;

/** Kept free on the wasm heap for the runtime and a forward's activations. */
const WASM_RESERVE_BYTES = 256 * 1024 ** 2;

const gb = (bytes: number): string => (bytes / 1e9).toFixed(2);

/**
 * Checks, before anything is allocated, that `bytes` more of tensors fit in the current
 * backend's memory, and throws an `Error` that says so otherwise: on wasm the heap is one
 * wasm32 memory of at most 4 GiB ({@link WASM_HEAP_LIMIT_BYTES}; 256 MiB of it kept free for
 * the runtime), where running out is otherwise a `RuntimeError: memory access out of bounds`
 * in the middle of a load. The message names what needs how many GB, what is already in use,
 * and what to use instead. Other backends are not limited here (cpu: the machine's memory;
 * webgl/webgpu: the GPU's, which the browser does not report).
 *
 * @example
 * ```ts
 * checkBackendMemory(4.4e9, 'LlamaForCausalLM (1.1B parameters as float32)');
 * // on wasm: Error: LlamaForCausalLM (1.1B parameters as float32) needs 4.40 GB, but the wasm backend's heap holds at most 4.29 GB …
 * ```
 */
export function checkBackendMemory(bytes: number, what: string): void {
  if (tf.getBackend() !== 'wasm') return;
  const used = tf.memory().numBytes;
  if (used + bytes <= WASM_HEAP_LIMIT_BYTES - WASM_RESERVE_BYTES) return;
  throw new Error(
    `${what} needs ${gb(bytes)} GB, but the wasm backend's heap holds at most ${gb(WASM_HEAP_LIMIT_BYTES)} GB ` +
      `(wasm32; ${gb(used)} GB already in use, ${gb(WASM_RESERVE_BYTES)} GB kept for the runtime). ` +
      'Use the cpu backend (in Node with @vlm/native-matmul for speed), webgpu or webgl, or a smaller model.',
  );
}

// The parts of the wasm backend (`BackendWasm`) that reserveBackendMemory uses: its heap and allocator.
interface WasmHeap {
  wasm?: { HEAPU8?: Uint8Array; _malloc?(bytes: number): number; _free?(pointer: number): void };
}

/**
 * On wasm, grows the heap once by `bytes` before a model's weights are read one at a time:
 * allocates one block of that size from the heap's allocator and frees it (no tensor is made),
 * so that the allocator hands the weights out of it. Otherwise the heap grows in steps of ~20%
 * (at most 96 MB), and each growth can set off a garbage collection (measured on a busy
 * machine: CLIP ViT-B/16 F16 loaded ~1/4 faster, and its heap ended at 344 MB instead of
 * 406 MB). Only an optimisation: skipped on other backends, when the heap would pass
 * {@link WASM_HEAP_LIMIT_BYTES} (less the runtime's share), or when the block cannot be
 * allocated. Call it after {@link checkBackendMemory}.
 *
 * @example
 * ```ts
 * checkBackendMemory(4 * params, 'the tower');
 * reserveBackendMemory(4 * params);
 * ```
 */
export function reserveBackendMemory(bytes: number): void {
  if (tf.getBackend() !== 'wasm' || !(bytes > 0)) return;
  const wasm = (tf.backend() as unknown as WasmHeap).wasm;
  const heap = wasm?.HEAPU8?.byteLength;
  if (heap === undefined || typeof wasm?._malloc !== 'function' || typeof wasm._free !== 'function') return;
  if (heap + bytes > WASM_HEAP_LIMIT_BYTES - WASM_RESERVE_BYTES) return;
  const pointer = wasm._malloc(Math.ceil(bytes)) >>> 0;
  if (pointer !== 0) wasm._free(pointer);
}
