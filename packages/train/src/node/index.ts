/**
 * The Node-only part of `@vlm/train`: checkpoints in a folder (atomic, keep the last K), the
 * frozen-feature cache on disk as safetensors, a JSON-lines metrics log, and a terminal progress
 * bar (plain lines when not a terminal or in CI). Everything else is in `@vlm/train`.
 *
 * @packageDocumentation
 */
export { FileCheckpointStore, type FileCheckpointStoreOptions } from './file-checkpoint-store';
export { SafetensorsFeatureStore } from './safetensors-feature-store';
export { JsonlMetricsLog } from './jsonl-metrics-log';
export { ProgressBar, type ProgressBarOptions } from './progress-bar';
