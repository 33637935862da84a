/**
 * `--workers N`: data parallelism over worker threads, each running its own backend (its own
 * wasm instance, hence its own core) on a contiguous part of the batch. Inference: each worker
 * writes its rows of the output into one shared buffer. Training: each worker writes its
 * summed micro-batch gradients into its own reused SharedArrayBuffer, then the workers add
 * them up in parallel, each over its share of the parameters, into buffer 0.
 */
import { Worker } from 'node:worker_threads';
import type { BackendName } from '@vlm/core';
import type { BenchCase } from './configs';
import type { Mode, Step } from './run';
import type { WorkerInit, WorkerRequest } from './worker';

interface Reply {
  ready?: boolean;
  error?: string;
  numTensors?: number;
  heapMb?: number;
}

/** A started group of workers for one configuration. */
export interface WorkerGroup {
  /** One step (all workers, then the gradient reduction for train). */
  step: (mode: Mode) => Promise<void>;
  /** Tensor counts of every worker after its last reply (a leak shows as growth). */
  numTensors: () => number[];
  /** The largest worker wasm heap seen, MB. */
  heapMb: () => number;
  /** The summed gradients (train) as one flat array in `model.parameters()` order. */
  grads: Float32Array;
  /** The whole batch's output (infer). */
  output: Float32Array;
  close: () => Promise<void>;
}

/**
 * Starts `n` workers for `c` (built on the main thread, whose weights they copy).
 * `outShape` is the primary output's shape for the whole batch.
 */
export async function startWorkers(c: BenchCase, n: number, opts: { backend: BackendName; quick: boolean; microBatch: number; outShape: number[] }): Promise<WorkerGroup> {
  const params = c.model.parameters();
  const total = params.reduce((a, p) => a + p.size, 0);
  const weights = new SharedArrayBuffer(total * 4);
  const flat = new Float32Array(weights);
  let off = 0;
  for (const p of params) {
    flat.set(p.dataSync() as Float32Array, off);
    off += p.size;
  }
  const B = c.inputs[0]!.shape[0]!;
  const workers = Math.max(1, Math.min(n, B));
  const grads = Array.from({ length: workers }, () => new SharedArrayBuffer(total * 4));
  const output = new SharedArrayBuffer(opts.outShape.reduce((a, b) => a * b, 1) * 4);
  const counts: number[] = new Array(workers).fill(0);
  let heap = 0;
  const pending = new Map<Worker, (r: Reply) => void>();
  const threads = Array.from({ length: workers }, (_, i) => {
    const start = Math.round((i * B) / workers);
    const init: WorkerInit = {
      backend: opts.backend,
      quick: opts.quick,
      name: c.name,
      start,
      count: Math.round(((i + 1) * B) / workers) - start,
      microBatch: opts.microBatch,
      weights,
      grads,
      index: i,
      output,
    };
    const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
    w.on('message', (r: Reply) => {
      if (r.numTensors !== undefined) counts[i] = r.numTensors;
      heap = Math.max(heap, r.heapMb ?? 0);
      const resolve = pending.get(w);
      pending.delete(w);
      resolve?.(r);
    });
    w.on('error', (e) => {
      const resolve = pending.get(w);
      pending.delete(w);
      resolve?.({ error: e.stack ?? String(e) });
    });
    return w;
  });
  const reply = (w: Worker) => new Promise<Reply>((resolve) => pending.set(w, resolve));
  const all = async (msgs: (i: number) => WorkerRequest | null) => {
    const replies = await Promise.all(
      threads.map((w, i) => {
        const msg = msgs(i);
        const r = reply(w);
        if (msg) w.postMessage(msg);
        return r;
      }),
    );
    const err = replies.find((r) => r.error);
    if (err) throw new Error(`worker: ${err.error}`);
  };
  await all(() => null); // ready
  return {
    step: async (mode) => {
      await all(() => ({ type: mode }));
      if (mode === 'train' && workers > 1) {
        await all((i) => ({ type: 'reduce', from: Math.round((i * total) / workers), to: Math.round(((i + 1) * total) / workers) }));
      }
    },
    numTensors: () => [...counts],
    heapMb: () => heap,
    grads: new Float32Array(grads[0]!),
    output: new Float32Array(output),
    close: async () => {
      await Promise.all(threads.map((w) => new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.postMessage({ type: 'close' } satisfies WorkerRequest);
      })));
    },
  };
}

/** A {@link Step} backed by a worker group (weights copied from `c`'s model). */
export async function prepareWorkerStep(c: BenchCase, mode: Mode, n: number, opts: { backend: BackendName; quick: boolean; microBatch: number; outShape: number[] }): Promise<Step & { group: WorkerGroup }> {
  const group = await startWorkers(c, n, opts);
  return {
    run: () => group.step(mode),
    dispose: () => group.close(),
    group,
  };
}
