/**
 * A data-parallel worker thread: runs its own TF.js backend (its own wasm instance, so its own
 * core) on a contiguous part of the batch. The weights come from the main thread through a
 * SharedArrayBuffer; outputs and gradients go back through SharedArrayBuffers allocated once
 * by the main thread and reused every step (no per-step allocation or transfer).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { microBatchGrads, selectBackend, type BackendName } from '@vlm/core';
import { parentPort, workerData } from 'node:worker_threads';
import { benchConfigs, type ConfigName } from './configs';
import { batchSlice } from './run';

/** What the main thread passes to each worker. */
export interface WorkerInit {
  backend: BackendName;
  quick: boolean;
  name: ConfigName;
  /** Rows `[start, start + count)` of the batch belong to this worker. */
  start: number;
  count: number;
  microBatch: number;
  /** The main thread's parameters, flattened in `model.parameters()` order. */
  weights: SharedArrayBuffer;
  /** This worker's gradient buffer (same layout as `weights`); index = worker index. */
  grads: SharedArrayBuffer[];
  index: number;
  /** The whole batch's output `[B, ...]`, each worker writing its rows. */
  output: SharedArrayBuffer;
}

/** Messages from the main thread. */
export type WorkerRequest = { type: 'infer' } | { type: 'train' } | { type: 'reduce'; from: number; to: number } | { type: 'close' };

const init = workerData as WorkerInit;

/** This worker's wasm heap in MB (its high-water mark), or 0 off wasm. */
const heapMb = () => Math.round(((tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length ?? 0) / 2 ** 20);

/** Copies a tensor's values into `dst` at `offset`: straight from the wasm heap when possible. */
function copyOut(t: tf.Tensor, dst: Float32Array, offset: number) {
  const b = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.Tensor) => Float32Array };
  dst.set(b.typedArrayFromHeap && tf.getBackend() === 'wasm' ? b.typedArrayFromHeap(t) : (t.dataSync() as Float32Array), offset);
}

async function main() {
  await selectBackend([init.backend]);
  const cfg = benchConfigs(init.quick).find((c) => c.name === init.name)!;
  const c = cfg.build();
  const params = c.model.parameters();
  const flat = new Float32Array(init.weights);
  let off = 0;
  for (const p of params) {
    p.assign(tf.tensor(flat.subarray(off, off + p.size), p.shape, 'float32'));
    off += p.size;
  }
  const B = c.inputs[0]!.shape[0]!;
  const mine = batchSlice(c.inputs, init.start, init.count).map((t) => tf.keep(t.clone()));
  tf.dispose(c.inputs);
  // bench_torch.py's w: the same seeded draw as the single-thread run, our rows of it.
  const w = tf.tidy(() => {
    const out = c.forward(batchSlice(mine, 0, 1));
    return tf.slice(tf.randomNormal([B, ...out.shape.slice(1)], 0, 1, 'float32', 7), init.start, init.count);
  });
  const output = new Float32Array(init.output);
  const rowSize = output.length / B;
  const grads = init.grads.map((g) => new Float32Array(g));
  const port = parentPort!;
  port.on('message', (msg: WorkerRequest) => {
    if (msg.type === 'infer') {
      for (let s = 0; s < init.count; s += init.microBatch) {
        const n = Math.min(init.microBatch, init.count - s);
        const out = tf.tidy(() => c.forward(batchSlice(mine, s, n)));
        copyOut(out, output, (init.start + s) * rowSize);
        out.dispose();
      }
    } else if (msg.type === 'train') {
      const { value, grads: g } = microBatchGrads(([w_, ...xs]) => tf.sum(tf.mul(c.forward(xs), w_!)), [w, ...mine], init.microBatch, params);
      let o = 0;
      for (const p of params) {
        copyOut(g[p.name]!, grads[init.index]!, o);
        o += p.size;
      }
      tf.dispose([value, ...Object.values(g)]);
    } else if (msg.type === 'reduce') {
      // Sum every worker's gradients into buffer 0 over [from, to): the workers split the range.
      const dst = grads[0]!;
      for (let k = 1; k < grads.length; k++) {
        const src = grads[k]!;
        for (let i = msg.from; i < msg.to; i++) dst[i] += src[i];
      }
    } else {
      c.model.dispose();
      tf.dispose([...mine, w]);
      port.close();
      return;
    }
    port.postMessage({ numTensors: tf.memory().numTensors, heapMb: heapMb() });
  });
  port.postMessage({ ready: true, numTensors: tf.memory().numTensors });
}

main().catch((e) => {
  parentPort!.postMessage({ error: (e as Error).stack ?? String(e) });
});
