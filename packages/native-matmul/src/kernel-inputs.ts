import * as tf from '@tensorflow/tfjs-core';

/** Checks that each given input of a native kernel is float32 (absent optional inputs are skipped). */
export function checkFloat32(kernel: string, inputs: Record<string, tf.TensorInfo | undefined>): void {
  for (const [name, t] of Object.entries(inputs)) {
    if (t && t.dtype !== 'float32') throw new Error(`${kernel}: expected ${name} of dtype float32, got ${t.dtype}`);
  }
}
