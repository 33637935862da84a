// The TF.js backends the page can run on, best first. The umbrella package registers the
// gradients, cpu and webgl (and is what nsfwjs itself imports); webgpu and wasm are added here.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '@vlm/core';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

/** WebGPU → WebGL → WASM → CPU. */
export const BACKEND_ORDER: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/**
 * Starts `wanted` if given (falling back down the order when it cannot start here), else the
 * best backend this browser has; the wasm binaries come from this page's own origin.
 */
export async function startBackend(wanted?: BackendName, options: { wasmThreads?: boolean } = {}): Promise<BackendName> {
  if (options.wasmThreads === false) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const from = wanted ? BACKEND_ORDER.indexOf(wanted) : 0;
  const order = BACKEND_ORDER.slice(Math.max(0, from));
  return selectBackend(order, {
    wasmBackend: wasm,
    wasmPaths: {
      'tfjs-backend-wasm.wasm': wasmPlain,
      'tfjs-backend-wasm-simd.wasm': wasmSimd,
      'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedSimd,
    },
  });
}

/** What the debug panel shows about the backend. */
export function backendDetails(): string {
  const name = tf.getBackend();
  if (name !== 'wasm') return name;
  const threads = (wasm as unknown as { getThreadsCount?: () => number }).getThreadsCount?.();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const mt = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return `wasm (SIMD ${simd ? 'on' : 'off'}, threads ${mt ? `on${threads ? `, ${threads}` : ''}` : 'off'})`;
}

/** The engine's memory: live tensors and bytes, plus the backend's own counters (GPU bytes on webgl). */
export function memorySnapshot(): { numTensors: number; numBytes: number; backendBytes: number | null } {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesInGPUAllocated?: number };
  return { numTensors: m.numTensors, numBytes: m.numBytes, backendBytes: m.numBytesInGPU ?? m.numBytesInGPUAllocated ?? null };
}
