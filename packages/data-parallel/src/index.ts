/**
 * Data parallelism for TensorFlow.js in Node: worker threads, each running its own backend on
 * a contiguous part of the batch, kept equal to the main thread's parameters.
 *
 * @packageDocumentation
 */
export { DataParallel, type DataParallelCallOptions, type DataParallelCloseOptions, type DataParallelGrads, type DataParallelOptions } from './data-parallel';
export { serveDataParallel, type WorkerInit, type WorkerModel, type WorkerSetup } from './serve';
export type { ParameterList } from './parameters';
export type { WorkerMemory } from './memory';
