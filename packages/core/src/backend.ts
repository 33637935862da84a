import * as tf from '@tensorflow/tfjs-core';

/** A TF.js backend `@vlm` knows how to load. */
export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /**
   * Where the wasm backend finds its `.wasm` files: a URL prefix ending in `/`, or a map from
   * file name to URL (TF.js's `setWasmPaths`). Set before wasm is tried. In Node the files are
   * found next to the package and this can be left out; in a browser bundle, point it at
   * wherever the app serves `tfjs-backend-wasm*.wasm`.
   */
  wasmPaths?: string | Record<string, string>;
}

/**
 * Starts the first backend in `preference` that works here and returns its name. Each
 * backend's package (`@tensorflow/tfjs-backend-<name>`, an optional peer dependency) is
 * imported on demand if not already registered. Throws an `Error` listing why each failed.
 *
 * @example
 * ```ts
 * const name = await selectBackend(['webgpu', 'webgl', 'wasm', 'cpu'], { wasmPaths: '/wasm/' });
 * // 'webgpu' in a browser with WebGPU, 'wasm' in Node
 * ```
 */
export async function selectBackend(
  preference: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'],
  options: SelectBackendOptions = {},
): Promise<BackendName> {
  const failures: string[] = [];
  for (const name of preference) {
    try {
      await loadBackendPackage(name, options);
      if (!tf.findBackendFactory(name)) throw new Error('the backend did not register (not supported here)');
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
      throw new Error('initialisation returned false');
    } catch (e) {
      failures.push(`  ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new Error(`selectBackend: none of [${preference.join(', ')}] could start:\n${failures.join('\n')}`);
}

async function loadBackendPackage(name: BackendName, options: SelectBackendOptions): Promise<void> {
  switch (name) {
    case 'cpu':
      if (!tf.findBackendFactory('cpu')) await import('@tensorflow/tfjs-backend-cpu');
      return;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      if (options.wasmPaths !== undefined) {
        wasm.setWasmPaths(options.wasmPaths as Parameters<typeof wasm.setWasmPaths>[0]);
      }
      return;
    }
    case 'webgl':
      if (!tf.findBackendFactory('webgl')) await import('@tensorflow/tfjs-backend-webgl');
      return;
    case 'webgpu':
      if (!tf.findBackendFactory('webgpu')) await import('@tensorflow/tfjs-backend-webgpu');
      return;
    default:
      throw new Error(`unknown backend '${String(name)}' (expected webgpu, webgl, wasm or cpu)`);
  }
}
