import { createRequire } from 'node:module';

type Memory = ArrayBuffer | Float32Array;

/** The compiled addon (`build/Release/vlm_matmul.node`, from `src/addon.c`). */
export interface NativeBinding {
  /** `C = op(A)·op(B) (+ bias)` over `batch` products; buffers are ArrayBuffers (byte offsets into them) or Float32Arrays. */
  sgemm(
    a: ArrayBuffer | Float32Array, aOffset: number,
    b: ArrayBuffer | Float32Array, bOffset: number,
    c: ArrayBuffer | Float32Array, cOffset: number,
    bias: ArrayBuffer | Float32Array | null, biasOffset: number,
    batch: number, m: number, n: number, k: number,
    transposeA: number, transposeB: number, strideA: number, strideB: number,
  ): void;
  /** `y = GELU(x)` over `n` floats: exact where `tanhForm` is 0, the tanh form where it is 1. */
  gelu(x: ArrayBuffer | Float32Array, xOffset: number, y: ArrayBuffer | Float32Array, yOffset: number, n: number, tanhForm: number): void;
  /** `dx = dy·GELU'(x)` over `n` floats, of the form `tanhForm` picks. */
  geluGrad(
    x: ArrayBuffer | Float32Array, xOffset: number,
    dy: ArrayBuffer | Float32Array, dyOffset: number,
    dx: ArrayBuffer | Float32Array, dxOffset: number, n: number, tanhForm: number,
  ): void;
  /**
   * LayerNorm over the last axis of `[rows, width]`: `y = (x − mean)·rstd·gamma + beta` (gamma and
   * beta both or neither), also writing each row's `mean` and `rstd = 1/√(var + eps)`.
   */
  layerNorm(
    x: Memory, xOffset: number, gamma: Memory | null, gammaOffset: number, beta: Memory | null, betaOffset: number,
    y: Memory, yOffset: number, mean: Memory, meanOffset: number, rstd: Memory, rstdOffset: number,
    rows: number, width: number, eps: number,
  ): void;
  /** LayerNorm's `dx` from `dy`, `x`, gamma (or null) and the forward's `mean`, `rstd`. */
  layerNormGrad(
    dy: Memory, dyOffset: number, x: Memory, xOffset: number, gamma: Memory | null, gammaOffset: number,
    mean: Memory, meanOffset: number, rstd: Memory, rstdOffset: number, dx: Memory, dxOffset: number,
    rows: number, width: number,
  ): void;
  /** LayerNorm's `dgamma = Σ dy·x̂` and `dbeta = Σ dy` over the rows. */
  layerNormParamGrad(
    dy: Memory, dyOffset: number, x: Memory, xOffset: number, mean: Memory, meanOffset: number,
    rstd: Memory, rstdOffset: number, dgamma: Memory, dgammaOffset: number, dbeta: Memory, dbetaOffset: number,
    rows: number, width: number,
  ): void;
  /** Grows the thread pool to `n` (the calling thread included); returns the size in use. */
  setThreads(n: number): number;
  info(): { isa: 'avx512' | 'avx2' | 'generic'; threads: number; cpus: number };
}

const ADDON = '../build/Release/vlm_matmul.node';
let binding: NativeBinding | undefined;
let loadError: Error | undefined;

/**
 * Loads the addon once. It is built when the package is installed (`node-gyp`, run by
 * `scripts/build-native.mjs`); where that failed, this throws an Error saying why and how to build it.
 */
export function loadBinding(): NativeBinding {
  if (binding) return binding;
  if (!loadError) {
    try {
      binding = createRequire(import.meta.url)(ADDON) as NativeBinding;
      return binding;
    } catch (e) {
      loadError = new Error(
        `@vlm/native-matmul: the native addon is not built or does not load here (${(e as Error).message.split('\n')[0]}). ` +
          'Build it with `npm rebuild @vlm/native-matmul` (needs python3, make and a C compiler; ' +
          'under pnpm 10 list @vlm/native-matmul in pnpm.onlyBuiltDependencies). The stock TF.js kernels keep working without it.',
      );
    }
  }
  throw loadError;
}
