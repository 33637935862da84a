/**
 * `--workers N`: data parallelism over worker threads with @vlm/data-parallel, each worker
 * running its own backend (its own wasm instance, hence its own core) on a contiguous part of
 * the batch; the configuration is rebuilt by name in every worker (./worker.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '@vlm/core';
import { DataParallel } from '@vlm/data-parallel';
import type { BenchCase } from './configs';
import { outputWeights, type Mode, type Step } from './run';
import type { BenchWorkerData } from './worker';

/** A {@link Step} on workers, with what the benchmark reads from them. */
export interface WorkerStep extends Step {
  /** Tensor counts of every worker (a leak shows as growth). */
  numTensors: () => Promise<number[]>;
  /** The largest worker wasm heap, MB (0 off wasm). */
  heapMb: () => Promise<number>;
  /** The last step's result: the whole batch's output (infer) or its gradients by name (train). */
  last: () => { output?: tf.Tensor; grads?: tf.NamedTensorMap };
}

/**
 * Starts `n` workers for `c` (built on the main thread, whose weights they take) and returns
 * the step of `mode`: the batch's forward (infer), or the gradients of bench_torch.py's
 * `sum(out * w)` summed over the workers (train), each worker by micro-batches of `microBatch`.
 */
export async function prepareWorkerStep(c: BenchCase, mode: Mode, n: number, opts: { backend: BackendName; quick: boolean; microBatch: number }): Promise<WorkerStep> {
  const data: BenchWorkerData = { backend: opts.backend, quick: opts.quick, name: c.name };
  const dp = await DataParallel.start({ worker: new URL('./worker.js', import.meta.url), workers: n, parameters: c.model.namedParameters(), data, microBatch: opts.microBatch });
  const w = mode === 'train' ? outputWeights(c) : null; // as in the single-thread step
  let last: { output?: tf.Tensor; grads?: tf.NamedTensorMap } = {};
  const free = () => tf.dispose([...(last.output ? [last.output] : []), ...Object.values(last.grads ?? {})]);
  return {
    run: async () => {
      free();
      if (w) {
        const { value, grads } = await dp.grads([w, ...c.inputs]);
        value.dispose();
        last = { grads };
      } else last = { output: await dp.predict(c.inputs) };
    },
    dispose: async () => {
      free();
      w?.dispose();
      await dp.close();
    },
    numTensors: async () => (await dp.workerMemory()).map((m) => m.numTensors),
    heapMb: async () => Math.round(Math.max(0, ...(await dp.workerMemory()).map((m) => m.wasmHeapBytes ?? 0)) / 2 ** 20),
    last: () => last,
  };
}
