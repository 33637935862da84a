/**
 * The worker side: {@link serveDataParallel} builds the user's model on this thread, then
 * answers the main thread's requests one at a time.
 */
import * as tf from '@tensorflow/tfjs-core';
import { microBatchGrads } from '@vlm/core';
import { parentPort, workerData } from 'node:worker_threads';
import { memoryOfThisThread } from './memory';
import { info, named, type ParameterList } from './parameters';
import { BOOT_KIND, type Boot, type Part, type Reply, type Request } from './protocol';

/**
 * What a worker's `setup` receives.
 *
 * @example
 * ```ts
 * serveDataParallel(async ({ data, index, workers }) => {
 *   console.log(`worker ${index} of ${workers}`, data);
 *   // ...
 * });
 * ```
 */
export interface WorkerInit {
  /** The `data` given to {@link DataParallel.start} (structured-cloned), e.g. a model configuration. */
  data: unknown;
  /** This worker's index, 0 to `workers - 1` (worker `i` gets the `i`-th part of every batch). */
  index: number;
  /** The number of workers. */
  workers: number;
}

/**
 * What a worker's `setup` returns: its copy of the model.
 *
 * @example
 * ```ts
 * const model: WorkerModel = {
 *   parameters: [w, b],
 *   forward: ([x]) => tf.add(tf.matMul(x, w), b),
 *   loss: ([x, y], batchSize) => tf.div(tf.sum(tf.square(tf.sub(tf.add(tf.matMul(x, w), b), y))), batchSize),
 * };
 * ```
 */
export interface WorkerModel {
  /**
   * The same parameters as the main thread's, in the same order (checked at start by name, shape
   * and dtype). Their values are overwritten with the main thread's.
   */
  parameters: ParameterList;
  /** The output for some rows of the batch (needed by {@link DataParallel.predict}); rows stay rows. */
  forward?: (inputs: tf.Tensor[]) => tf.Tensor;
  /**
   * The loss of some rows of the batch (needed by {@link DataParallel.grads}). It must be a sum
   * over rows: the workers' gradients are added up. `batchSize` is the size of the whole batch,
   * so a mean is `tf.div(sumOverRows, batchSize)`.
   */
  loss?: (inputs: tf.Tensor[], batchSize: number) => tf.Scalar;
}

/**
 * Builds a worker's copy of the model: runs in the worker thread, selects its own backend
 * (each worker has its own TF.js engine), may be async.
 *
 * @example
 * ```ts
 * const setup: WorkerSetup = async ({ data }) => {
 *   await tf.setBackend('wasm');
 *   return buildModel(data);
 * };
 * ```
 */
export type WorkerSetup = (init: WorkerInit) => WorkerModel | Promise<WorkerModel>;

/** Copies `t`'s values into `dst` at `offset`: straight from the heap on wasm (no intermediate copy). */
function readInto(t: tf.Tensor, dst: Float32Array, offset: number) {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => tf.TypedArray };
  dst.set(backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : t.dataSync(), offset);
}

/** The rows of every micro-batch's output, as one array. */
function concatRows(chunks: Part[]): Part {
  const [first] = chunks;
  const rows = chunks.reduce((n, c) => n + c.shape[0]!, 0);
  const values = new (first!.values.constructor as new (n: number) => tf.TypedArray)(chunks.reduce((n, c) => n + c.values.length, 0));
  let offset = 0;
  for (const c of chunks) {
    values.set(c.values, offset);
    offset += c.values.length;
  }
  return { values, shape: [rows, ...first!.shape.slice(1)], dtype: first!.dtype };
}

/**
 * Serves a data-parallel worker: call it in the worker module given to {@link DataParallel.start}.
 * `setup` builds this thread's copy of the model (selecting a backend first); the parameters
 * then take the main thread's values, and before every call the ones the main thread changed
 * since (e.g. by an optimizer step). Errors thrown by `setup`, `forward` or `loss` reject the
 * main thread's call with their message and stack.
 *
 * @param setup builds the model on this thread; called once.
 *
 * @example
 * ```ts
 * // worker.mjs
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { serveDataParallel } from '@vlm/data-parallel';
 * import { buildModel } from './model.js';
 *
 * serveDataParallel(async ({ data }) => {
 *   await tf.setBackend('wasm');
 *   const model = buildModel(data);
 *   return {
 *     parameters: model.parameters(),
 *     forward: ([x]) => model.forward(x),
 *     loss: ([x, y], batchSize) => tf.div(tf.sum(tf.square(tf.sub(model.forward(x), y))), batchSize),
 *   };
 * });
 * ```
 */
export function serveDataParallel(setup: WorkerSetup): void {
  const boot = workerData as Boot | undefined;
  const port = parentPort;
  if (!port || boot?.kind !== BOOT_KIND) {
    throw new Error('serveDataParallel: call it in the worker module given to DataParallel.start (it runs in a worker thread)');
  }
  const weights = new Float32Array(boot.weights);
  const grads = new Float32Array(boot.grads[boot.index]!);
  const sum = new Float32Array(boot.grads[0]!);
  const reply = (r: Reply, transfer: ArrayBuffer[] = []) => port.postMessage(r, transfer);
  const fail = (id: number, e: unknown) => reply({ id, error: e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e) });

  let model!: WorkerModel;
  let params: tf.Variable[] = [];
  const offsets: number[] = [];

  const gradsOf = (inputs: tf.Tensor[], B: number): Pick<Reply, 'value' | 'present'> => {
    const loss = model.loss;
    if (!loss) throw new Error('DataParallel.grads: the worker setup returned no loss');
    const rows = inputs[0]!.shape[0]!;
    const { value, grads: g } = microBatchGrads((xs) => loss(xs, B), inputs, boot.microBatch || rows, params);
    const present: number[] = [];
    params.forEach((p, i) => {
      const t = g[p.name];
      if (t) {
        readInto(t, grads, offsets[i]!);
        present.push(i);
      } else grads.fill(0, offsets[i]!, offsets[i]! + p.size);
    });
    const v = value.dataSync()[0]!;
    tf.dispose([value, ...Object.values(g)]);
    return { value: v, present };
  };

  const predict = (inputs: tf.Tensor[]): Part => {
    const forward = model.forward;
    if (!forward) throw new Error('DataParallel.predict: the worker setup returned no forward');
    const rows = inputs[0]!.shape[0]!;
    const step = boot.microBatch || rows;
    const chunks: Part[] = [];
    for (let s = 0; s < rows; s += step) {
      const n = Math.min(step, rows - s);
      const y = tf.tidy(() => forward(n === rows ? inputs : inputs.map((x) => tf.slice(x, s, n))));
      try {
        if (y.shape[0] !== n || y.dtype === 'string' || y.dtype === 'complex64') {
          throw new Error(`DataParallel.predict: forward must return a numeric tensor with the rows as its first dimension; for ${n} rows it returned ${y.dtype} [${y.shape.join(', ')}]`);
        }
        chunks.push({ values: y.dataSync() as tf.TypedArray, shape: y.shape, dtype: y.dtype });
      } finally {
        y.dispose();
      }
    }
    return concatRows(chunks);
  };

  const handle = (req: Request) => {
    if (req.type === 'memory') return reply({ id: req.id, memory: memoryOfThisThread() });
    if (req.type === 'reduce') {
      for (let k = 1; k < req.count; k++) {
        const src = new Float32Array(boot.grads[k]!);
        for (let i = req.from; i < req.to; i++) sum[i] += src[i]!;
      }
      return reply({ id: req.id });
    }
    // Views into the shared buffer are copied: TF.js's cpu backend would keep the view itself.
    for (const i of req.sync) {
      const p = params[i]!;
      tf.tidy(() => p.assign(tf.tensor(weights.slice(offsets[i]!, offsets[i]! + p.size), p.shape, 'float32')));
    }
    if (!req.task) return reply({ id: req.id });
    const inputs = req.inputs.map((x) => tf.tensor(x.values, x.shape, x.dtype));
    try {
      if (req.task === 'grads') return reply({ id: req.id, ...gradsOf(inputs, req.batchSize) });
      const output = predict(inputs);
      return reply({ id: req.id, output }, [output.values.buffer as ArrayBuffer]);
    } finally {
      tf.dispose(inputs);
    }
  };

  // Requests run one at a time, in order, after setup.
  let queue = (async () => {
    model = await setup({ data: boot.data, index: boot.index, workers: boot.workers });
    const list = named(model.parameters);
    params = list.map(([, v]) => v);
    params.reduce((offset, p) => (offsets.push(offset), offset + p.size), 0);
    reply({ id: 0, parameters: list.map(info) });
  })().catch((e) => fail(0, e));
  port.on('message', (req: Request) => {
    queue = queue.then(() => handle(req)).catch((e) => fail(req.id, e));
  });
}
