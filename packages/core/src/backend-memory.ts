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
