import * as tf from '@tensorflow/tfjs-core';
import { installFastWasmKernels } from './wasm-kernels';

/** A TF.js backend `@vlm` knows how to load. */
export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /**
   * Where the wasm backend finds its `.wasm` files: a URL prefix ending in `/`, or a map from
   * file name to URL (TF.js's `setWasmPaths`), set before wasm starts. In Node the files are
   * found next to the package and this can be left out. In a browser bundle, pass the module you
   * imported as {@link SelectBackendOptions.wasmBackend} with it (a bundle cannot be reached
   * by name at run time).
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * The `@tensorflow/tfjs-backend-wasm` module, for {@link SelectBackendOptions.wasmPaths} in a
   * browser bundle: `import * as wasm from '@tensorflow/tfjs-backend-wasm'`.
   */
  wasmBackend?: WasmBackendModule;
}

/** The part of `@tensorflow/tfjs-backend-wasm` that {@link selectBackend} uses. */
export interface WasmBackendModule {
  /** TF.js's `setWasmPaths`: where the `.wasm` files are served from. */
  setWasmPaths(prefixOrFileMap: string | Record<string, string>, usePlatformFetch?: boolean): void;
}

/**
 * Starts the first backend in `preference` that works here and returns its name. Throws an
 * `Error` listing why each failed.
 *
 * Backends are optional: a browser app registers the ones it wants by importing their packages
 * (`import '@tensorflow/tfjs-backend-webgl'`), and `selectBackend` picks among those, so a bundle
 * holds only the backends the app installed. In Node, a backend that is not registered yet is
 * imported by name if its package is installed (`@tensorflow/tfjs-backend-<name>`). Where it
 * starts wasm, it also installs core's faster wasm kernels ({@link installFastWasmKernels}).
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-webgl';
 * import * as wasm from '@tensorflow/tfjs-backend-wasm';
 * const name = await selectBackend(['webgpu', 'webgl', 'wasm', 'cpu'], { wasmPaths: '/wasm/', wasmBackend: wasm });
 * // 'webgl' in a browser with WebGL (webgpu was not imported), 'wasm' in Node
 * ```
 */
export async function selectBackend(
  preference: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'],
  options: SelectBackendOptions = {},
): Promise<BackendName> {
  const failures: string[] = [];
  for (const name of preference) {
    try {
      if (!BACKEND_NAMES.includes(name)) throw new Error(`unknown backend '${String(name)}' (expected ${BACKEND_NAMES.join(', ')})`);
      const module = await registeredBackend(name);
      if (name === 'wasm' && options.wasmPaths !== undefined) {
        const wasm = options.wasmBackend ?? (module as WasmBackendModule | undefined);
        if (!wasm?.setWasmPaths) throw new Error('wasmPaths was given but the wasm module was not: pass { wasmBackend } (import * as wasm from \'@tensorflow/tfjs-backend-wasm\')');
        wasm.setWasmPaths(options.wasmPaths);
      }
      if (await tf.setBackend(name)) {
        await tf.ready();
        if (name === 'wasm') installFastWasmKernels();
        return name;
      }
      throw new Error('initialisation returned false');
    } catch (e) {
      failures.push(`  ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new Error(`selectBackend: none of [${preference.join(', ')}] could start:\n${failures.join('\n')}`);
}

const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

// The specifier is a variable so that bundlers leave this import alone: a bundle must hold only
// the backends the app imported itself. In Node it finds any installed backend package.
const importByName = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);

/**
 * Makes sure backend `name` is registered (importing its package by name where the platform can,
 * i.e. Node) and returns its module when it was imported here.
 */
async function registeredBackend(name: BackendName): Promise<unknown> {
  const specifier = `@tensorflow/tfjs-backend-${name}`;
  let module: unknown;
  // wasm is imported even when registered: its module carries setWasmPaths.
  if (!tf.findBackendFactory(name) || name === 'wasm') {
    try {
      module = await importByName(specifier);
    } catch (e) {
      if (!tf.findBackendFactory(name)) {
        throw new Error(`not registered: install '${specifier}' and import it in your app (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
      }
    }
  }
  if (!tf.findBackendFactory(name)) throw new Error('the backend did not register (not supported here)');
  return module;
}
