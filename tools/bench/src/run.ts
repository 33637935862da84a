/** One benchmark step per mode, on the current backend of this thread. */
import * as tf from '@tensorflow/tfjs-core';
import { microBatchGrads } from '@vlm/core';
import type { BenchCase } from './configs';

/** `infer` = forward without gradients; `train` = forward + backward of `sum(out * w)`, no optimizer step. */
export type Mode = 'infer' | 'train';

/** Rows `[start, start + size)` of every input (the batch is the first dimension of each). */
export function batchSlice(inputs: tf.Tensor[], start: number, size: number): tf.Tensor[] {
  return inputs.map((x) => (start === 0 && size === x.shape[0] ? x : tf.slice(x, start, size)));
}

/**
 * The train step's fixed `w` of `sum(out * w)`: N(0, 1) with the shape of the whole batch's
 * output (bench_torch.py: `randn_like(out)`), seeded, so every step and check uses the same one.
 */
export function outputWeights(c: BenchCase): tf.Tensor {
  return tf.tidy(() => {
    const out = c.forward(batchSlice(c.inputs, 0, 1));
    return tf.randomNormal([c.inputs[0]!.shape[0]!, ...out.shape.slice(1)], 0, 1, 'float32', 7);
  });
}

/** A prepared step: `run` does one timed iteration, `dispose` frees what `prepare` made. */
export interface Step {
  run: () => Promise<void>;
  dispose: () => void | Promise<void>;
}

/**
 * Builds the step of `mode` for `c`. Train splits the batch into micro-batches of
 * `microBatch` rows (gradient accumulation: the gradients of the micro-batches are summed,
 * which equals the full-batch gradient of `sum(out * w)`), so a batch whose backward does
 * not fit one wasm heap still trains. Every step reads a result back (`data()`), so the
 * timing includes all the compute on asynchronous backends too.
 */
export function prepareStep(c: BenchCase, mode: Mode, microBatch: number): Step {
  const B = c.inputs[0]!.shape[0]!;
  const mb = Math.max(1, Math.min(microBatch, B));
  if (mode === 'infer') {
    return {
      run: async () => {
        for (let s = 0; s < B; s += mb) {
          const out = tf.tidy(() => c.forward(batchSlice(c.inputs, s, Math.min(mb, B - s))));
          await out.data();
          out.dispose();
        }
      },
      dispose: () => {},
    };
  }
  const params = c.model.parameters();
  const w = outputWeights(c);
  // The smallest gradient is read back to wait for the whole backward (cheap to read).
  const smallest = params.reduce((a, p, i) => (p.size < params[a]!.size ? i : a), 0);
  return {
    run: async () => {
      const { value, grads } = microBatchGrads(([w_, ...xs]) => tf.sum(tf.mul(c.forward(xs), w_!)), [w, ...c.inputs], mb, params);
      await value.data();
      await grads[params[smallest]!.name]!.data();
      tf.dispose([value, ...Object.values(grads)]);
    },
    dispose: () => w.dispose(),
  };
}
