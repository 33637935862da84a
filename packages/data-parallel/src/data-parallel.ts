/**
 * The main thread's side: {@link DataParallel} splits each batch over worker threads (each
 * running its own TF.js backend, hence its own core), keeps their parameters equal to the main
 * thread's, and sums their gradients through shared memory.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { WorkerMemory } from './memory';
import { checkParameters, info, named, type ParameterList } from './parameters';
import { BOOT_KIND, type Boot, type Part, type Reply } from './protocol';
import { batchSize, splitRows } from './rows';
import { settleAll, Thread } from './thread';

/**
 * Options of {@link DataParallel.start}.
 *
 * @example
 * ```ts
 * const options: DataParallelOptions = {
 *   worker: new URL('./worker.mjs', import.meta.url),
 *   workers: 2,
 *   parameters: model.parameters(),
 *   data: { config: 'small' },
 *   microBatch: 4,
 * };
 * ```
 */
export interface DataParallelOptions {
  /**
   * The worker module (a file URL, or a path as `new Worker` takes it): plain JavaScript that
   * calls {@link serveDataParallel}. It runs with Node's own module resolution (no bundler,
   * test-runner aliases or TypeScript transpilation).
   */
  worker: URL | string;
  /** Worker threads (default: the number of CPUs). A batch of B < workers rows uses B of them. */
  workers?: number;
  /** The main thread's parameters; each worker's setup returns the same ones, in the same order. */
  parameters: ParameterList;
  /** Handed to every worker's setup as `init.data` (structured-cloned), e.g. what to build. */
  data?: unknown;
  /**
   * Rows per micro-batch inside a worker (default: its whole part at once): gradients are summed
   * over micro-batches (peak memory of one micro-batch); `predict` runs the forward in pieces.
   */
  microBatch?: number;
  /**
   * Milliseconds that each worker's setup may take (from its start to its parameters' report).
   * Past it, `start` rejects with an error naming the worker and the workers are terminated: a
   * worker module that never calls {@link serveDataParallel}, or a setup that never resolves,
   * cannot leave `start` pending. Default: 300,000 (5 minutes); `Infinity` waits forever.
   */
  startTimeoutMs?: number;
  /**
   * Milliseconds that each call ({@link DataParallel.grads}, {@link DataParallel.predict},
   * {@link DataParallel.workerMemory}) may wait for every worker's answer, unless the call gives
   * its own. Past it, the call rejects with an error naming the worker, the workers are
   * terminated (a worker stuck in a `loss` that never returns cannot be stopped otherwise) and
   * later calls reject. Default: 600,000 (10 minutes); `Infinity` waits forever.
   */
  callTimeoutMs?: number;
}

/**
 * Options of one {@link DataParallel} call.
 *
 * @example
 * ```ts
 * const options: DataParallelCallOptions = { timeoutMs: 30_000 };
 * const { value, grads } = await dp.grads([x, y], options);
 * ```
 */
export interface DataParallelCallOptions {
  /** Overrides {@link DataParallelOptions.callTimeoutMs} for this call. */
  timeoutMs?: number;
}

/**
 * Options of {@link DataParallel.close}.
 *
 * @example
 * ```ts
 * await dp.close({ graceMs: 1000 });
 * ```
 */
export interface DataParallelCloseOptions {
  /**
   * Milliseconds to let the call in progress finish before the workers are terminated anyway
   * (the call then rejects). Default: 5,000.
   */
  graceMs?: number;
}

/**
 * The result of {@link DataParallel.grads}, as `tf.variableGrads` returns it: new tensors on the
 * main thread's backend, owned by the caller.
 *
 * @example
 * ```ts
 * const { value, grads }: DataParallelGrads = await dp.grads([x, y]);
 * optimizer.applyGradients(grads);
 * tf.dispose([value, ...Object.values(grads)]);
 * ```
 */
export interface DataParallelGrads {
  /** The loss of the whole batch (the sum of the workers' losses). */
  value: tf.Scalar;
  /** The gradient of `value` for each parameter that has one, keyed by the main thread's variable name. */
  grads: tf.NamedTensorMap;
}

/**
 * Data parallelism over Node worker threads. Each worker builds its own copy of the model (in
 * the module given as `worker`, with {@link serveDataParallel}) on its own TF.js backend, so
 * stock TF.js (whose wasm backend is single-threaded in Node) uses several cores. Every input
 * is split along its first dimension into contiguous parts, one per worker.
 *
 * - {@link DataParallel.grads} returns the gradients of the whole batch, summed over the
 *   workers (each worker writes its own into a SharedArrayBuffer allocated once, then the
 *   workers add them up in parallel, each over its share of the parameters);
 *   {@link DataParallel.predict} returns the forward of the whole batch.
 * - Parameters follow the main thread: before each call, every parameter whose value changed
 *   since the last call (TF.js gives a variable a new data id on each `assign`, which is how
 *   optimizers update it) is copied into a shared buffer and assigned in each worker. After an
 *   optimizer step over all parameters that is one read of the weights on the main thread and
 *   one copy into each worker's backend; a call without a change in between copies nothing.
 * - Inputs are copied to the workers on every call (their rows only); outputs and gradients come
 *   back as new tensors on the main thread's backend.
 * - Calls run one at a time, in order. Each worker holds a whole copy of the model, so memory
 *   grows with the number of workers. Idle workers do not keep the process alive, but
 *   {@link DataParallel.close} frees them.
 *
 * @example
 * ```ts
 * // main thread (worker.mjs as in serveDataParallel's example)
 * const model = buildModel(config);
 * const dp = await DataParallel.start({ worker: new URL('./worker.mjs', import.meta.url), workers: 2, parameters: model.parameters(), data: config });
 * const optimizer = tf.train.adam(1e-3);
 * for (const [x, y] of batches) {
 *   const { value, grads } = await dp.grads([x, y]);
 *   optimizer.applyGradients(grads);
 *   tf.dispose([value, ...Object.values(grads)]);
 * }
 * const out = await dp.predict([x]);
 * await dp.close();
 * ```
 */
export class DataParallel {
  /** The number of worker threads. */
  readonly workers: number;
  private readonly threads: Thread[];
  private readonly params: Array<[string, tf.Variable]>;
  private readonly offsets: number[];
  private readonly weights: Float32Array;
  private readonly sum: Float32Array;
  /** The data id of each parameter when it was last sent (a new one means a new value). */
  private readonly sent: object[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private closed: Promise<void> | null = null;
  /** Set when a call timed out and the workers were terminated: every later call rejects with it. */
  private broken: Error | null = null;
  private readonly callTimeoutMs: number;

  private constructor(threads: Thread[], params: Array<[string, tf.Variable]>, offsets: number[], weights: SharedArrayBuffer, sum: SharedArrayBuffer, callTimeoutMs: number) {
    this.callTimeoutMs = callTimeoutMs;
    this.workers = threads.length;
    this.threads = threads;
    this.params = params;
    this.offsets = offsets;
    this.weights = new Float32Array(weights);
    this.sum = new Float32Array(sum);
  }

  /**
   * Starts the workers, runs each one's setup, checks that their parameters match the main
   * thread's (by position, then name, shape and dtype: an Error names the first mismatch) and
   * gives them the main thread's values. An error in a worker's setup rejects with its message
   * and stack, and a setup that does not end within `startTimeoutMs` with an error naming the
   * worker; the workers are then ended.
   *
   * @param options the worker module, the number of workers, the parameters, data for the setup, the micro-batch.
   *
   * @example
   * ```ts
   * const dp = await DataParallel.start({ worker: new URL('./worker.mjs', import.meta.url), workers: 2, parameters: model.parameters() });
   * ```
   */
  static async start(options: DataParallelOptions): Promise<DataParallel> {
    const n = options.workers ?? (os.availableParallelism?.() ?? os.cpus().length);
    const microBatch = options.microBatch ?? 0;
    if (!Number.isInteger(n) || n < 1) throw new Error(`DataParallel.start: workers must be an integer >= 1, got ${n}`);
    if (!Number.isInteger(microBatch) || microBatch < 0) throw new Error(`DataParallel.start: microBatch must be an integer >= 1, got ${microBatch}`);
    const startTimeoutMs = checkTimeout(options.startTimeoutMs ?? 300_000, 'DataParallel.start: startTimeoutMs');
    const callTimeoutMs = checkTimeout(options.callTimeoutMs ?? 600_000, 'DataParallel.start: callTimeoutMs');
    const params = named(options.parameters);
    const bad = params.find(([, v]) => v.dtype !== 'float32');
    if (bad) throw new Error(`DataParallel.start: parameter '${bad[0]}' is ${bad[1].dtype}; only float32 parameters are supported`);
    const offsets: number[] = [];
    const total = params.reduce((offset, [, v]) => (offsets.push(offset), offset + v.size), 0);
    const weights = new SharedArrayBuffer(total * 4);
    const grads = Array.from({ length: n }, () => new SharedArrayBuffer(total * 4));
    const threads: Thread[] = [];
    try {
      for (let index = 0; index < n; index++) {
        const boot: Boot = { kind: BOOT_KIND, data: options.data, index, workers: n, microBatch, weights, grads };
        const thread = new Thread(new Worker(options.worker, { workerData: boot }), index);
        threads.push(thread);
        thread.expireAfter(0, startTimeoutMs, () => new Error(
          `DataParallel.start: worker ${index} did not finish its setup within ${startTimeoutMs} ms (startTimeoutMs): does the worker module call serveDataParallel, and does its setup resolve?`,
        ));
      }
      const ready = await settleAll(threads.map((t) => t.ready));
      ready.forEach((r, i) => checkParameters(params.map(info), r.parameters ?? [], i));
      const dp = new DataParallel(threads, params, offsets, weights, grads[0]!, callTimeoutMs);
      const sync = await dp.changedParameters();
      await settleAll(threads.map((t) => t.request({ type: 'step', sync, task: null, inputs: [], batchSize: 0 }, [], startTimeoutMs, () => new Error(
        `DataParallel.start: worker ${t.index} did not take the main thread's parameters within ${startTimeoutMs} ms (startTimeoutMs)`,
      ))));
      return dp;
    } catch (e) {
      await Promise.all(threads.map((t) => t.terminate()));
      throw e;
    }
  }

  /**
   * The loss of the batch `inputs` and its gradients, as `tf.variableGrads(() => loss(inputs,
   * B), parameters)` on one thread would give them (up to float summation order): each worker
   * differentiates its setup's `loss` on its rows (by micro-batches when `microBatch` is set),
   * and the gradients are summed.
   *
   * @param inputs tensors whose first dimension is the batch (the same for all), in the order the worker's `loss` takes them.
   * @param options this call's timeout (default: `callTimeoutMs`).
   * @returns new tensors, owned by the caller.
   *
   * @example
   * ```ts
   * const { value, grads } = await dp.grads([x, y]);
   * optimizer.applyGradients(grads); // the next call sends the new weights to the workers
   * tf.dispose([value, ...Object.values(grads)]);
   * ```
   */
  grads(inputs: tf.Tensor[], options: DataParallelCallOptions = {}): Promise<DataParallelGrads> {
    return this.serial('grads', options, async (expiry) => {
      const replies = await this.step('grads', inputs, expiry);
      const k = replies.length;
      if (k > 1) {
        const ranges = splitRows(this.sum.length, k);
        await settleAll(ranges.map((r, i) => this.threads[i]!.request({ type: 'reduce', from: r.start, to: r.start + r.count, count: k }, [], ...expiry(i))));
      }
      const present = new Set(replies.flatMap((r) => r.present ?? []));
      const grads: tf.NamedTensorMap = {};
      this.params.forEach(([, v], i) => {
        const at = this.offsets[i]!;
        if (present.has(i)) grads[v.name] = tf.tensor(this.sum.slice(at, at + v.size), v.shape, 'float32');
      });
      return { value: tf.scalar(replies.reduce((s, r) => s + r.value!, 0)), grads };
    });
  }

  /**
   * The forward of the batch `inputs`: each worker runs its setup's `forward` on its rows, and
   * the rows come back in order as one tensor on the main thread's backend.
   *
   * @param inputs tensors whose first dimension is the batch (the same for all).
   * @param options this call's timeout (default: `callTimeoutMs`).
   * @returns a new tensor, owned by the caller.
   *
   * @example
   * ```ts
   * const logits = await dp.predict([x]);
   * ```
   */
  predict(inputs: tf.Tensor[], options: DataParallelCallOptions = {}): Promise<tf.Tensor> {
    return this.serial('predict', options, async (expiry) => {
      const parts = (await this.step('predict', inputs, expiry)).map((r) => r.output!);
      const [first] = parts;
      const rest = first!.shape.slice(1).join();
      const odd = parts.find((p) => p.dtype !== first!.dtype || p.shape.slice(1).join() !== rest);
      if (odd) throw new Error(`DataParallel.predict: the workers' outputs differ beyond the rows: ${parts.map((p) => `${p.dtype} [${p.shape.join(', ')}]`).join(', ')}`);
      const values = new (first!.values.constructor as new (n: number) => tf.TypedArray)(parts.reduce((n, p) => n + p.values.length, 0));
      let offset = 0;
      for (const p of parts) {
        values.set(p.values, offset);
        offset += p.values.length;
      }
      return tf.tensor(values, [parts.reduce((n, p) => n + p.shape[0]!, 0), ...first!.shape.slice(1)], first!.dtype);
    });
  }

  /**
   * Each worker's memory (e.g. to check that a loop leaks no tensor in the workers).
   *
   * @param options this call's timeout (default: `callTimeoutMs`).
   *
   * @example
   * ```ts
   * const before = (await dp.workerMemory()).map((m) => m.numTensors);
   * ```
   */
  workerMemory(options: DataParallelCallOptions = {}): Promise<WorkerMemory[]> {
    return this.serial('workerMemory', options, async (expiry) =>
      (await settleAll(this.threads.map((t, i) => t.request({ type: 'memory' }, [], ...expiry(i))))).map((r) => r.memory!),
    );
  }

  /**
   * Ends the workers, after the call in progress (if any) or `graceMs`, whichever comes first:
   * workers that do not answer are terminated, and the call in progress then rejects. Later
   * calls reject. Always resolves.
   *
   * @param options how long to let the call in progress finish.
   *
   * @example
   * ```ts
   * await dp.close();
   * ```
   */
  close(options: DataParallelCloseOptions = {}): Promise<void> {
    const graceMs = checkTimeout(options.graceMs ?? 5_000, 'DataParallel.close: graceMs');
    this.closed ??= (async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Number.isFinite(graceMs) ? graceMs : 2 ** 31 - 1);
      });
      await Promise.race([this.queue, grace]);
      clearTimeout(timer);
      const reason = new Error(`DataParallel: closed (the workers were terminated; a call still running after close's graceMs of ${graceMs} ms was abandoned)`);
      await Promise.all(this.threads.map((t) => t.terminate(reason)));
    })();
    return this.closed;
  }

  /**
   * Runs `f` after the calls before it, with a per-worker timeout for its requests; a timeout
   * terminates the workers (a worker stuck in user code cannot be stopped otherwise).
   */
  private serial<T>(what: string, options: DataParallelCallOptions, f: (expiry: (worker: number) => [number, () => Error]) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('DataParallel: closed'));
    if (this.broken) return Promise.reject(this.broken);
    let timeoutMs: number;
    try {
      timeoutMs = checkTimeout(options.timeoutMs ?? this.callTimeoutMs, `DataParallel.${what}: timeoutMs`);
    } catch (e) {
      return Promise.reject(e);
    }
    const expiry = (worker: number): [number, () => Error] => [
      timeoutMs,
      () => {
        this.broken ??= new Error(
          `DataParallel.${what}: worker ${worker} did not answer within ${timeoutMs} ms (timeoutMs); the workers were terminated, start a new DataParallel`,
        );
        // terminate every worker (the others may be waiting on the stuck one's gradients)
        for (const t of this.threads) void t.terminate(this.broken);
        return this.broken;
      },
    ];
    const result = this.queue.then(() => {
      if (this.broken) throw this.broken;
      return f(expiry);
    });
    this.queue = result.catch(() => {});
    return result;
  }

  /** Writes the parameters whose value changed since they were last sent into the shared weights; their indices. */
  private async changedParameters(): Promise<number[]> {
    const changed: number[] = [];
    for (const [i, [name, v]] of this.params.entries()) {
      if (v.isDisposed) throw new Error(`DataParallel: parameter '${name}' was disposed`);
      if (v.dataId === this.sent[i]) continue;
      this.weights.set((await v.data()) as Float32Array, this.offsets[i]);
      this.sent[i] = v.dataId;
      changed.push(i);
    }
    return changed;
  }

  /** Sends each worker the changed parameters and its rows of `inputs`; the replies of the workers that got rows. */
  private async step(task: 'grads' | 'predict', inputs: tf.Tensor[], expiry: (worker: number) => [number, () => Error]): Promise<Reply[]> {
    const B = batchSize(inputs, `DataParallel.${task}`);
    const odd = inputs.find((x) => x.dtype === 'string' || x.dtype === 'complex64');
    if (odd) throw new Error(`DataParallel.${task}: inputs must be float32, int32 or bool, got ${odd.dtype}`);
    const sync = await this.changedParameters();
    const values = await Promise.all(inputs.map((x) => x.data()));
    const parts = splitRows(B, this.workers);
    const replies = await settleAll(
      this.threads.map((t, i) => {
        const rows = parts[i];
        if (!rows) return t.request({ type: 'step', sync, task: null, inputs: [], batchSize: B }, [], ...expiry(i));
        const mine: Part[] = inputs.map((x, j) => {
          const size = x.size / B;
          return { values: (values[j] as tf.TypedArray).slice(rows.start * size, (rows.start + rows.count) * size), shape: [rows.count, ...x.shape.slice(1)], dtype: x.dtype };
        });
        return t.request({ type: 'step', sync, task, inputs: mine, batchSize: B }, mine.map((p) => p.values.buffer as ArrayBuffer), ...expiry(i));
      }),
    );
    return replies.slice(0, parts.length);
  }
}

function checkTimeout(ms: number, what: string): number {
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms <= 0) throw new Error(`${what}: expected a number of milliseconds > 0 (or Infinity), got ${String(ms)}`);
  return ms;
}
