import * as tf from '@tensorflow/tfjs-core';

/** Checks that each given input of a native kernel is float32 (absent optional inputs are skipped). */
export function checkFloat32(kernel: string, inputs: Record<string, tf.TensorInfo | undefined>): void {
  for (const [name, t] of Object.entries(inputs)) {
    if (t && t.dtype !== 'float32') throw new Error(`${kernel}: expected ${name} of dtype float32, got ${t.dtype}`);
  }
}

/** Checks that a native kernel's input has the shape it needs. */
export function checkShape(kernel: string, name: string, t: tf.TensorInfo, shape: number[]): void {
  if (!tf.util.arraysEqual(t.shape, shape)) throw new Error(`${kernel}: expected ${name} of shape [${shape}], got [${t.shape}]`);
}
