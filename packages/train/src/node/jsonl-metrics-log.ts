import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CheckpointEvent, EvalMetrics, StepMetrics, TrainerCallbacks } from '../callbacks';

/**
 * Trainer callbacks that append one JSON object per line to a file: every step
 * (`{"type":"step","step":…,"epoch":…,"loss":…,"lr":…,"grad_norm":…,"steps_per_s":…, <tracked>…}`),
 * every evaluation (`{"type":"eval","step":…, <metrics>…}`) and every checkpoint
 * (`{"type":"checkpoint","step":…}`).
 *
 * @example
 * ```ts
 * import { JsonlMetricsLog } from '@vlm/train/node';
 * new Trainer({ ...options, callbacks: [new JsonlMetricsLog('runs/flamingo/metrics.jsonl')] });
 * ```
 */
export class JsonlMetricsLog implements TrainerCallbacks {
  /** The file. */
  readonly path: string;

  /** @param path the file (its folder is created; lines are appended). */
  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
  }

  /** Appends one record. */
  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  /** Appends a `step` record. */
  onStep(m: StepMetrics): void {
    this.write({ type: 'step', step: m.step, epoch: m.epoch, loss: m.loss, lr: m.lr, grad_norm: m.gradNorm, steps_per_s: m.stepsPerSecond, ...m.tracked });
  }

  /** Appends an `eval` record. */
  onEval(m: EvalMetrics): void {
    this.write({ type: 'eval', step: m.step, ...m.metrics });
  }

  /** Appends a `checkpoint` record. */
  onCheckpoint(e: CheckpointEvent): void {
    this.write({ type: 'checkpoint', step: e.step, model_bytes: e.bytes.model, optimizer_bytes: e.bytes.optimizer });
  }
}
