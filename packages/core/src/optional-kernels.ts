import * as tf from '@tensorflow/tfjs-core';

/**
 * Whether every named kernel is registered for the active backend: the optional kernels a
 * package may register (GELU, LayerNorm), used by core only when the whole set is there.
 */
export function hasKernels(names: readonly string[]): boolean {
  const backend = tf.getBackend();
  return names.every((name) => !!tf.getKernel(name, backend));
}
