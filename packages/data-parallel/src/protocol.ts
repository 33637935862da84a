/**
 * The messages between {@link DataParallel} (main thread) and {@link serveDataParallel} (each
 * worker). Internal: not part of the public API.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { WorkerMemory } from './memory';

/** Tells a worker's `serveDataParallel` that `DataParallel.start` started it. */
export const BOOT_KIND = '@vlm/data-parallel';

/** A worker's `workerData`. */
export interface Boot {
  kind: typeof BOOT_KIND;
  /** The user's `data`, handed to `setup`. */
  data: unknown;
  index: number;
  workers: number;
  /** Rows per micro-batch inside the worker; 0 = its whole part at once. */
  microBatch: number;
  /** The main thread's parameters, float32, flattened in order (written before each call that changed them). */
  weights: SharedArrayBuffer;
  /** One gradient buffer per worker, laid out as `weights`; the sum ends in buffer 0. */
  grads: SharedArrayBuffer[];
}

/** A tensor as it crosses threads (its values transferred, not copied). */
export interface Part {
  values: tf.TypedArray;
  shape: number[];
  dtype: tf.DataType;
}

/** One parameter as the worker's setup returned it. */
export interface ParameterInfo {
  name: string;
  shape: number[];
  dtype: tf.DataType;
}

/** Main → worker. `step` first re-assigns the parameters in `sync` from the weights buffer. */
export type Request =
  | { id: number; type: 'step'; sync: number[]; task: 'grads' | 'predict' | null; inputs: Part[]; batchSize: number }
  | { id: number; type: 'reduce'; from: number; to: number; count: number }
  | { id: number; type: 'memory' };

/** Worker → main: the answer to request `id` (0 = the end of setup). */
export interface Reply {
  id: number;
  /** The worker's error, with its stack. */
  error?: string;
  parameters?: ParameterInfo[];
  /** grads: this worker's loss. */
  value?: number;
  /** grads: the indices of the parameters that got a gradient. */
  present?: number[];
  /** predict: this worker's rows of the output. */
  output?: Part;
  memory?: WorkerMemory;
}

/** `Omit<Request, 'id'>`, member by member. */
export type Unsent<R = Request> = R extends unknown ? Omit<R, 'id'> : never;
