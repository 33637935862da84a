import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '@vlm/core';
import { AdamW, Trainer, cosineScheduleWithWarmup, flamingoParamGroups, namedParameters, type Dataset } from '@vlm/train';
import { FileCheckpointStore, JsonlMetricsLog, ProgressBar } from '@vlm/train/node';

/** One recorded training step (from the metrics log, so a resumed run has its whole history). */
export interface LoggedStep {
  step: number;
  loss: number;
  [tracked: string]: number;
}

export interface TrainRun {
  name: string;
  steps: LoggedStep[];
  seconds: number;
  parameters: number;
  resumedFrom: number | null;
}

export interface TrainSettings {
  out: string;
  seed: number;
  resume: boolean;
  checkpointEvery: number;
  lr: number;
  log: (s: string) => void;
}

/**
 * Trains the parameters of `modules` (the bridge; frozen parts are never passed) with
 * @vlm/train: AdamW with OpenFlamingo's weight-decay groups (gates at 10× the lr), warmup + cosine, clipping at 1,
 * checkpoints in `out/checkpoints/<name>` (`--resume` continues from the latest), a JSON-lines
 * metrics log `out/metrics/<name>.jsonl`, and a progress bar.
 */
export async function trainBridge<B extends tf.TensorContainer>(
  name: string,
  modules: Module | Record<string, Module>,
  data: Dataset<B>,
  loss: (batch: B) => tf.Scalar,
  steps: number,
  settings: TrainSettings,
  track?: () => Record<string, number>,
): Promise<TrainRun> {
  const checkpointDir = join(settings.out, 'checkpoints', name);
  const metricsPath = join(settings.out, 'metrics', `${name}.jsonl`);
  if (!settings.resume) {
    rmSync(checkpointDir, { recursive: true, force: true });
    rmSync(metricsPath, { force: true });
  }
  const params = namedParameters(modules);
  // OpenFlamingo's groups, the tanh gates at 10× the lr (shared with apps/web)
  const groups = flamingoParamGroups(params, { lr: settings.lr });
  const optimizer = new AdamW(groups, { lr: settings.lr });
  const trainer = new Trainer<B>({
    optimizer,
    data,
    batchSize: 1, // one prepared batch unit per draw (see batchUnits)
    steps,
    loss,
    seed: settings.seed,
    schedule: cosineScheduleWithWarmup({ warmupSteps: Math.max(1, Math.round(steps / 10)), trainingSteps: steps }),
    clipGradNorm: 1,
    checkpoints: { store: new FileCheckpointStore(checkpointDir, { keepLast: 2 }), every: settings.checkpointEvery },
    track,
    callbacks: [new JsonlMetricsLog(metricsPath), new ProgressBar({ label: name, every: Math.max(1, Math.round(steps / 6)) })],
  });
  const resumedFrom = settings.resume ? await trainer.restore() : null;
  if (resumedFrom !== null) settings.log(`  ${name}: resumed from the checkpoint of step ${resumedFrom}`);
  const t0 = performance.now();
  await trainer.fit();
  const seconds = (performance.now() - t0) / 1000;
  optimizer.dispose();
  return { name, steps: readSteps(metricsPath), seconds, parameters: params.reduce((n, p) => n + p.variable.size, 0), resumedFrom };
}

function readSteps(path: string): LoggedStep[] {
  if (!existsSync(path)) return [];
  const byStep = new Map<number, LoggedStep>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as Record<string, unknown>;
    if (r.type !== 'step') continue;
    const { type: _t, epoch: _e, lr: _l, grad_norm: _g, steps_per_s: _s, ...rest } = r;
    byStep.set(r.step as number, rest as LoggedStep); // a resumed run rewrites the steps after its checkpoint
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** One phase of a bridge's training: its name (checkpoints, metrics), data and steps. */
export interface TrainPhase<B> {
  name: string;
  data: Dataset<B>;
  steps: number;
}

/**
 * Trains a bridge in phases, one after the other (each its own optimizer, warmup + cosine,
 * checkpoints and metrics log, so `--resume` picks up inside any phase); the runs are joined
 * into one history with the steps counted on from phase to phase.
 */
export async function trainPhases<B extends tf.TensorContainer>(
  name: string,
  modules: Module | Record<string, Module>,
  phases: ReadonlyArray<TrainPhase<B>>,
  loss: (batch: B) => tf.Scalar,
  settings: TrainSettings,
  track?: () => Record<string, number>,
): Promise<TrainRun & { phases: Array<{ name: string; steps: number; seconds: number }> }> {
  const joined: LoggedStep[] = [];
  const done: Array<{ name: string; steps: number; seconds: number }> = [];
  let offset = 0;
  let seconds = 0;
  let parameters = 0;
  let resumedFrom: number | null = null;
  for (const phase of phases) {
    const run = await trainBridge(phase.name, modules, phase.data, loss, phase.steps, settings, track);
    joined.push(...run.steps.map((s) => ({ ...s, step: s.step + offset })));
    if (run.resumedFrom !== null && resumedFrom === null) resumedFrom = run.resumedFrom + offset;
    offset += phase.steps;
    seconds += run.seconds;
    parameters = run.parameters;
    done.push({ name: phase.name, steps: phase.steps, seconds: run.seconds });
  }
  return { name, steps: joined, seconds, parameters, resumedFrom, phases: done };
}
