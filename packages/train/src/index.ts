/**
 * Training for the `@vlm` bridges (and any set of TF.js variables): only the bridge trains,
 * with AdamW (PyTorch-equal) and parameter groups, Hugging Face learning-rate schedules,
 * `clip_grad_norm_` clipping, gradient accumulation, seeded shuffling, pluggable gradient
 * sources, frozen-feature caches, metrics callbacks, atomic checkpoints that resume
 * bit-identically, and a NaN/Inf guard. Imports nothing from Node: file checkpoints, the
 * safetensors feature store, the JSON-lines log and the progress bar are in `@vlm/train/node`.
 *
 * @packageDocumentation
 */
export * from './named-parameter';
export * from './param-groups';
export {
  Optimizer,
  type OptimizerGroup,
  type OptimizerOptions,
  type OptimizerParams,
  type OptimizerState,
  type OptimizerStateInfo,
} from './optimizer';
export * from './adamw';
export * from './sgd';
export * from './lr-schedule';
export * from './clip-grad-norm';
export * from './gradient-source';
export * from './data-order';
export * from './dataset';
export * from './feature-cache';
export { MemoryCheckpointStore, type Checkpoint, type CheckpointStore, type MemoryCheckpointStoreOptions, type TrainerState } from './checkpoint';
export * from './non-finite-error';
export * from './callbacks';
export * from './trainer';
