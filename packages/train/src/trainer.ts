import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, writeSafetensors } from '@vlm/core';
import type { CheckpointEvent, EvalMetrics, StepMetrics, TrainerCallbacks } from './callbacks';
import type { Checkpoint, CheckpointStore, TrainerState } from './checkpoint';
import { clipGradNormAsync } from './clip-grad-norm';
import { DataOrder } from './data-order';
import type { Dataset } from './dataset';
import { variableGradients, type GradientSource } from './gradient-source';
import { lrSchedule, type LrSchedule } from './lr-schedule';
import type { NamedParameter } from './named-parameter';
import { NonFiniteError } from './non-finite-error';
import type { Optimizer } from './optimizer';

/** Options of a {@link Trainer}. */
export interface TrainerOptions<B> {
  /** The optimizer; its parameters are what trains (nothing else changes). */
  optimizer: Optimizer;
  /** The training data. */
  data: Dataset<B>;
  /** Examples per batch (per micro-batch when `accumulationSteps > 1`). */
  batchSize: number;
  /** Optimizer steps to train in all (`fit` stops there; a resumed run counts the steps already done). */
  steps: number;
  /** The loss of a batch; gradients come from `tf.variableGrads` (unless `gradients` is given). */
  loss?: (batch: B) => tf.Scalar;
  /**
   * Where gradients come from, instead of `loss`: e.g. `(batch) => dp.grads(batch)` with
   * `@vlm/data-parallel`, or {@link microBatchGradients}.
   */
  gradients?: GradientSource<B>;
  /** Learning-rate schedule (a factor on every group's lr). Default: constant. */
  schedule?: LrSchedule;
  /** Clip the global gradient norm to this value (`clip_grad_norm_`). Default: no clipping. */
  clipGradNorm?: number;
  /** Batches whose gradients are averaged into one optimizer step. Default: 1. */
  accumulationSteps?: number;
  /** Seed of the data order. Default: 0. */
  seed?: number;
  /** Shuffle the data every epoch. Default: true. */
  shuffle?: boolean;
  /** Drop each epoch's last, smaller batch. Default: false. */
  dropLast?: boolean;
  /** Checkpointing: where, and every how many steps (and at the end of `fit`). */
  checkpoints?: CheckpointOptions;
  /** Periodic evaluation: every how many steps, and what to run (returns named scalars). */
  evaluate?: EvaluateOptions;
  /** Scalars recorded with every step's metrics (e.g. Flamingo's gates). */
  track?: () => Record<string, number>;
  /** Hooks: progress bars, metric logs. */
  callbacks?: TrainerCallbacks[];
  /** Dispose each batch's tensors after its gradients are computed. Default: true. */
  disposeBatches?: boolean;
}

/** A position in the data order. */
export interface DataPosition {
  /** The epoch (0-based). */
  epoch: number;
  /** The batch's index in that epoch's order. */
  batchInEpoch: number;
}

/** The `checkpoints` option of a {@link Trainer}. */
export interface CheckpointOptions {
  /** Where checkpoints go. */
  store: CheckpointStore;
  /** Write one every this many optimizer steps (and one at the end of `fit`). */
  every: number;
}

/** The `evaluate` option of a {@link Trainer}. */
export interface EvaluateOptions {
  /** Run every this many optimizer steps. */
  every: number;
  /** The evaluation: returns named scalars (held-out loss, accuracy). */
  run: () => Record<string, number> | Promise<Record<string, number>>;
}

/** What {@link Trainer.fit} returns. */
export interface FitResult {
  /** Optimizer steps done. */
  step: number;
  /** Every step's loss in this `fit`, in order. */
  losses: number[];
  /** The last step's metrics (undefined when no step ran). */
  last?: StepMetrics;
}

/**
 * Trains the parameters of an optimizer — and only those — on a data set: batches in a seeded
 * order that changes every epoch, gradients from `tf.variableGrads` or any other source,
 * gradient accumulation, global-norm clipping, a learning-rate schedule, a guard that stops on a
 * NaN/Inf loss or gradient before it reaches the weights, periodic evaluation, metrics
 * callbacks, and checkpoints (weights under PyTorch names, optimizer state, data position) from
 * which {@link Trainer.restore} resumes bit-identically.
 *
 * @example
 * ```ts
 * const optimizer = new AdamW(weightDecayGroups(namedParameters({ perceiver, flamingo }), { weightDecay: 0.1 }), { lr: 1e-4 });
 * const trainer = new Trainer({
 *   optimizer, data, batchSize: 8, steps: 1000, loss: (batch) => captionLoss(batch),
 *   schedule: cosineScheduleWithWarmup({ warmupSteps: 50, trainingSteps: 1000 }), clipGradNorm: 1,
 *   checkpoints: { store, every: 100 },
 * });
 * await trainer.restore(); // continue from the latest checkpoint, if any
 * await trainer.fit();
 * ```
 */
export class Trainer<B extends tf.TensorContainer> {
  /** The optimizer. */
  readonly optimizer: Optimizer;
  /** The data order (seeded, per epoch). */
  readonly order: DataOrder;
  private readonly options: TrainerOptions<B>;
  private readonly gradients: GradientSource<B>;
  private readonly accumulation: number;
  private readonly batchesPerEpoch: number;
  private readonly callbacks: TrainerCallbacks[];
  private stepsDone = 0;
  private batchesDrawn = 0;
  private lastMetrics: StepMetrics | undefined;
  private lastCheckpointStep = -1;
  private epochCache: { epoch: number; order: number[] } | null = null;

  /** @param options what to train, on what, and how. */
  constructor(options: TrainerOptions<B>) {
    this.options = options;
    this.optimizer = options.optimizer;
    if (!options.loss === !options.gradients) throw new Error('Trainer: give exactly one of `loss` (gradients by tf.variableGrads) and `gradients` (a gradient source)');
    this.gradients = options.gradients ?? variableGradients(options.loss!);
    const int = (name: string, v: number | undefined, min: number) => {
      if (!(Number.isSafeInteger(v) && v! >= min)) throw new Error(`Trainer: ${name} must be an integer >= ${min}, got ${v}`);
    };
    int('batchSize', options.batchSize, 1);
    int('steps', options.steps, 0);
    this.accumulation = options.accumulationSteps ?? 1;
    int('accumulationSteps', this.accumulation, 1);
    if (options.checkpoints) int('checkpoints.every', options.checkpoints.every, 1);
    if (options.evaluate) int('evaluate.every', options.evaluate.every, 1);
    if (options.clipGradNorm !== undefined && !(options.clipGradNorm > 0)) throw new Error(`Trainer: clipGradNorm must be > 0, got ${options.clipGradNorm}`);
    this.order = new DataOrder({ size: options.data.size, seed: options.seed ?? 0, shuffle: options.shuffle ?? true });
    const size = options.data.size;
    this.batchesPerEpoch = options.dropLast ? Math.floor(size / options.batchSize) : Math.ceil(size / options.batchSize);
    if (this.batchesPerEpoch === 0) throw new Error(`Trainer: with dropLast, ${size} examples make no batch of ${options.batchSize}`);
    this.callbacks = options.callbacks ?? [];
  }

  /** Optimizer steps done so far (restored by {@link Trainer.restore}). */
  get step(): number {
    return this.stepsDone;
  }

  /** The position of the next batch: its epoch and index in that epoch's order. */
  get position(): DataPosition {
    return { epoch: Math.floor(this.batchesDrawn / this.batchesPerEpoch), batchInEpoch: this.batchesDrawn % this.batchesPerEpoch };
  }

  /** The parameters being trained. */
  get parameters(): NamedParameter[] {
    return this.optimizer.parameters;
  }

  /**
   * Runs one optimizer step: draws `accumulationSteps` batches, gets each one's loss and
   * gradients, averages them, checks that the loss and every gradient are finite (else throws a
   * {@link NonFiniteError} and changes nothing), clips, and updates the parameters with the
   * schedule's learning rate. Returns the step's metrics (callbacks are run by `fit`, not here).
   */
  async trainStep(): Promise<StepMetrics> {
    const t0 = performance.now();
    const params = this.optimizer.parameters;
    const variables = params.map((p) => p.variable);
    const nameOf = new Map(params.map((p) => [p.variable.name, p.name]));
    const drawnBefore = this.batchesDrawn;
    const stepNo = this.stepsDone + 1;
    let sum: tf.NamedTensorMap = {};
    let lossSum = 0;
    let epoch = 0;
    try {
      for (let a = 0; a < this.accumulation; a++) {
        const next = this.nextBatch();
        epoch = next.epoch;
        const batch = tf.tidy(() => this.options.data.batch(next.indices));
        let result;
        try {
          result = await this.gradients(batch, variables);
        } finally {
          if (this.options.disposeBatches ?? true) tf.dispose(batch);
        }
        const { value, grads } = result;
        lossSum += (await value.data())[0]!;
        value.dispose();
        for (const [k, g] of Object.entries(grads)) {
          if (!nameOf.has(k)) {
            g.dispose();
            continue;
          }
          const prev = sum[k];
          if (prev) {
            sum[k] = tf.add(prev, g);
            prev.dispose();
            g.dispose();
          } else sum[k] = g;
        }
      }
      if (this.accumulation > 1) {
        const scaled = tf.tidy(() => Object.fromEntries(Object.entries(sum).map(([k, g]) => [k, tf.div(g, this.accumulation)])) as tf.NamedTensorMap);
        tf.dispose(Object.values(sum));
        sum = scaled;
      }
      const loss = lossSum / this.accumulation;
      const { grads: clipped, totalNorm, norms } = await clipGradNormAsync(sum, this.options.clipGradNorm ?? Infinity);
      try {
        if (!Number.isFinite(loss) || !Number.isFinite(totalNorm)) {
          const bad = params.find((p) => p.variable.name in norms && !Number.isFinite(norms[p.variable.name]!));
          const { epoch: e, batchInEpoch } = this.positionOf(this.batchesDrawn - 1);
          throw new NonFiniteError(stepNo, loss, bad?.name, `epoch ${e}, batch ${batchInEpoch} of the epoch`);
        }
        const factor = this.options.schedule ? this.options.schedule.factor(this.stepsDone) : 1;
        this.optimizer.step(clipped, factor);
        this.stepsDone = stepNo;
        const lrs = Object.fromEntries(this.optimizer.groups.map((g) => [g.name, g.lr * factor]));
        this.lastMetrics = {
          step: stepNo,
          totalSteps: this.options.steps,
          epoch,
          loss,
          lr: this.optimizer.groups[0]!.lr * factor,
          lrs,
          gradNorm: totalNorm,
          stepsPerSecond: 1000 / Math.max(1e-3, performance.now() - t0),
          tracked: this.options.track ? this.options.track() : {},
        };
        return this.lastMetrics;
      } finally {
        tf.dispose(Object.values(clipped));
      }
    } catch (e) {
      this.batchesDrawn = drawnBefore; // nothing of a failed step counts
      throw e;
    } finally {
      tf.dispose(Object.values(sum));
    }
  }

  /**
   * Trains until `steps` optimizer steps are done (from where the trainer stands: after
   * {@link Trainer.restore}, the checkpoint's step), evaluating, checkpointing and calling the
   * callbacks on the way; writes a last checkpoint at the end when checkpoints are on.
   */
  async fit(): Promise<FitResult> {
    const losses: number[] = [];
    const start = performance.now();
    const startStep = this.stepsDone;
    await this.emit('onStart', { step: this.stepsDone, totalSteps: this.options.steps });
    try {
      while (this.stepsDone < this.options.steps) {
        const m = await this.trainStep();
        m.stepsPerSecond = (this.stepsDone - startStep) / Math.max(1e-6, (performance.now() - start) / 1000);
        losses.push(m.loss);
        await this.emit('onStep', m);
        const { evaluate, checkpoints } = this.options;
        if (evaluate && this.stepsDone % evaluate.every === 0) {
          const metrics = await evaluate.run();
          await this.emit('onEval', { step: this.stepsDone, metrics } satisfies EvalMetrics);
        }
        if (checkpoints && this.stepsDone % checkpoints.every === 0) await this.saveCheckpoint();
      }
      if (this.options.checkpoints && this.lastCheckpointStep !== this.stepsDone && this.stepsDone > startStep) await this.saveCheckpoint();
    } catch (error) {
      await this.emit('onEnd', { step: this.stepsDone, error });
      throw error;
    }
    await this.emit('onEnd', { step: this.stepsDone });
    const result: FitResult = { step: this.stepsDone, losses };
    if (this.lastMetrics) result.last = this.lastMetrics;
    return result;
  }

  /**
   * The current state as a {@link Checkpoint}: the trained weights in PyTorch layout under
   * their names, the optimizer's state, and the {@link TrainerState}.
   */
  checkpoint(): Checkpoint {
    const params = this.optimizer.parameters;
    const weights: Record<string, tf.Tensor> = {};
    for (const p of params) weights[p.name] = p.layout === 'transposed' ? tf.transpose(p.variable) : tf.clone(p.variable);
    const opt = this.optimizer.state();
    try {
      const { epoch, batchInEpoch } = this.position;
      const state: TrainerState = {
        format: 'vlm-train/1',
        step: this.stepsDone,
        epoch,
        batchInEpoch,
        batchesDrawn: this.batchesDrawn,
        rng: { algorithm: 'mulberry32-fisher-yates', seed: this.order.seed, shuffle: this.order.shuffle },
        schedule: this.options.schedule ? { ...this.options.schedule.config } : null,
        data: { size: this.order.size, batchSize: this.options.batchSize, dropLast: this.options.dropLast ?? false, accumulationSteps: this.accumulation },
        optimizer: opt.info,
      };
      if (this.lastMetrics) state.last = { loss: this.lastMetrics.loss, lr: this.lastMetrics.lr, gradNorm: this.lastMetrics.gradNorm };
      return {
        step: this.stepsDone,
        model: writeSafetensors(weights, { format: 'pt' }),
        optimizer: writeSafetensors(opt.tensors, { format: 'pt', optimizer: opt.info.kind }),
        state,
      };
    } finally {
      tf.dispose(Object.values(weights));
      tf.dispose(Object.values(opt.tensors));
    }
  }

  /** Writes {@link Trainer.checkpoint} to the `checkpoints` store and tells the callbacks. */
  async saveCheckpoint(): Promise<Checkpoint> {
    const store = this.options.checkpoints?.store;
    if (!store) throw new Error('Trainer.saveCheckpoint: no checkpoint store (the `checkpoints` option)');
    const c = this.checkpoint();
    await store.save(c);
    this.lastCheckpointStep = c.step;
    await this.emit('onCheckpoint', { step: c.step, bytes: { model: c.model.byteLength, optimizer: c.optimizer.byteLength } } satisfies CheckpointEvent);
    return c;
  }

  /**
   * Resumes from a checkpoint: `checkpoint` if given, else the latest in the `checkpoints`
   * store. Restores the weights, the optimizer state, the step and the position in the data
   * order, so that training continues exactly as the saved run would have. Everything is checked
   * first (format, parameter names and shapes, optimizer kind, batching); on any mismatch an
   * `Error` says what differs and nothing changes. Returns the restored step, or `null` when the
   * store holds no checkpoint.
   */
  async restore(checkpoint?: Checkpoint): Promise<number | null> {
    const c = checkpoint ?? (await this.options.checkpoints?.store.latest()) ?? null;
    if (!c) {
      if (!this.options.checkpoints && !checkpoint) throw new Error('Trainer.restore: no checkpoint given and no checkpoint store (the `checkpoints` option)');
      return null;
    }
    const s = c.state;
    const problems: string[] = [];
    if (s?.format !== 'vlm-train/1') throw new Error(`Trainer.restore: trainer_state.json has format ${JSON.stringify(s?.format)}, expected "vlm-train/1"`);
    const want = { size: this.order.size, batchSize: this.options.batchSize, dropLast: this.options.dropLast ?? false, accumulationSteps: this.accumulation };
    for (const k of Object.keys(want) as Array<keyof typeof want>) {
      if (s.data[k] !== want[k]) problems.push(`data.${k} is ${s.data[k]} in the checkpoint, ${want[k]} here`);
    }
    if (s.rng.seed !== this.order.seed || s.rng.shuffle !== this.order.shuffle) {
      problems.push(`data order (seed ${s.rng.seed}, shuffle ${s.rng.shuffle}) differs from this trainer's (seed ${this.order.seed}, shuffle ${this.order.shuffle})`);
    }
    const sched = this.options.schedule?.config ?? null;
    if (JSON.stringify(s.schedule && lrSchedule(s.schedule).config) !== JSON.stringify(sched)) {
      problems.push(`schedule ${JSON.stringify(s.schedule)} in the checkpoint, ${JSON.stringify(sched)} here`);
    }
    if (!(Number.isSafeInteger(s.step) && s.step >= 0 && Number.isSafeInteger(s.batchesDrawn) && s.batchesDrawn >= 0)) {
      problems.push(`step ${s.step} / batchesDrawn ${s.batchesDrawn} are not integers >= 0`);
    }
    const weights = readSafetensors(c.model, { source: `checkpoint ${c.step}: model.safetensors` }).tensors;
    let optTensors: Record<string, tf.Tensor> = {};
    try {
      optTensors = readSafetensors(c.optimizer, { source: `checkpoint ${c.step}: optimizer.safetensors` }).tensors;
      const params = this.optimizer.parameters;
      const names = new Set(params.map((p) => p.name));
      for (const p of params) {
        const t = weights[p.name];
        const shape = p.layout === 'transposed' ? [...p.variable.shape].reverse() : p.variable.shape;
        if (!t) problems.push(`weight '${p.name}' is missing`);
        else if (t.dtype !== 'float32' || t.shape.join() !== shape.join()) problems.push(`weight '${p.name}' is ${t.dtype} [${t.shape}], expected float32 [${shape}]`);
      }
      for (const k of Object.keys(weights)) if (!names.has(k)) problems.push(`weight '${k}' belongs to no trained parameter`);
      if (problems.length) throw new Error(`Trainer.restore: checkpoint of step ${c.step} does not fit this trainer:\n  ${problems.join('\n  ')}`);
      this.optimizer.loadState({ tensors: optTensors, info: s.optimizer }); // checks before it changes anything
      for (const p of params) {
        const t = weights[p.name]!;
        tf.tidy(() => p.variable.assign(p.layout === 'transposed' ? tf.transpose(t) : t));
      }
      this.stepsDone = s.step;
      this.batchesDrawn = s.batchesDrawn;
      this.lastCheckpointStep = s.step;
      this.epochCache = null;
      return s.step;
    } finally {
      tf.dispose(Object.values(weights));
      tf.dispose(Object.values(optTensors));
    }
  }

  /** Frees the optimizer's state (not the parameters, not the data). */
  dispose(): void {
    this.optimizer.dispose();
  }

  private positionOf(drawn: number): DataPosition {
    return { epoch: Math.floor(drawn / this.batchesPerEpoch), batchInEpoch: drawn % this.batchesPerEpoch };
  }

  private nextBatch(): { epoch: number; indices: number[] } {
    const { epoch, batchInEpoch } = this.positionOf(this.batchesDrawn);
    if (this.epochCache?.epoch !== epoch) this.epochCache = { epoch, order: this.order.epoch(epoch) };
    const b = this.options.batchSize;
    this.batchesDrawn++;
    return { epoch, indices: this.epochCache.order.slice(batchInEpoch * b, (batchInEpoch + 1) * b) };
  }

  private async emit<K extends keyof TrainerCallbacks>(hook: K, event: Parameters<NonNullable<TrainerCallbacks[K]>>[0]): Promise<void> {
    for (const c of this.callbacks) {
      const f = c[hook] as ((e: typeof event) => void | Promise<void>) | undefined;
      if (f) await f.call(c, event);
    }
  }
}
