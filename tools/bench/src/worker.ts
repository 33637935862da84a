/**
 * The `--workers` worker module: rebuilds the benchmark configuration named by the main thread
 * on its own backend and serves it with @vlm/data-parallel (whose weights then replace the
 * freshly initialised ones). The train loss is bench_torch.py's `sum(out * w)`, with `w` passed
 * as the first input.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { selectBackend, type BackendName } from '@vlm/core';
import { serveDataParallel } from '@vlm/data-parallel';
import { benchConfigs, type ConfigName } from './configs';

/** What the main thread passes as the workers' `data`. */
export interface BenchWorkerData {
  backend: BackendName;
  quick: boolean;
  name: ConfigName;
}

serveDataParallel(async ({ data }) => {
  const { backend, quick, name } = data as BenchWorkerData;
  await selectBackend([backend]);
  const c = benchConfigs(quick).find((cfg) => cfg.name === name)!.build();
  tf.dispose(c.inputs);
  return {
    parameters: c.model.namedParameters(),
    forward: c.forward,
    loss: ([w, ...xs]) => tf.sum(tf.mul(c.forward(xs), w!)),
  };
});
