import type { LrScheduleConfig } from './lr-schedule';
import type { OptimizerStateInfo } from './optimizer';

/**
 * The small JSON part of a checkpoint (`trainer_state.json`): where training stands, so that a
 * resumed run continues exactly where the saved one was.
 */
export interface TrainerState {
  /** Format tag: `vlm-train/1`. */
  format: 'vlm-train/1';
  /** Optimizer steps done. */
  step: number;
  /** Epoch of the next batch (0-based). */
  epoch: number;
  /** Index of the next batch inside that epoch's order. */
  batchInEpoch: number;
  /** Batches drawn in total (over all epochs). */
  batchesDrawn: number;
  /** The random state of the data order: the epoch orders are recomputed from it (see `DataOrder`). */
  rng: {
    /** How orders are drawn: a Fisher–Yates shuffle driven by mulberry32 seeded by (seed, epoch). */
    algorithm: 'mulberry32-fisher-yates';
    /** The seed. */
    seed: number;
    /** Whether epochs are shuffled. */
    shuffle: boolean;
  };
  /** The learning-rate schedule, or `null` for a constant learning rate. */
  schedule: LrScheduleConfig | null;
  /** How the data were batched (a resumed run must batch the same way). */
  data: {
    /** Examples in the data set. */
    size: number;
    /** Examples per batch. */
    batchSize: number;
    /** Whether each epoch's last, smaller batch is dropped. */
    dropLast: boolean;
    /** Batches per optimizer step. */
    accumulationSteps: number;
  };
  /** The optimizer's kind, groups and step counts (its tensors are in `optimizer.safetensors`). */
  optimizer: OptimizerStateInfo;
  /** The last step's metrics (loss, learning rate, gradient norm), for the record. */
  last?: {
    /** The step's loss. */
    loss: number;
    /** The first group's learning rate. */
    lr: number;
    /** The gradient norm before clipping. */
    gradNorm: number;
  };
}

/**
 * One checkpoint as bytes and JSON: `model.safetensors` (the trained weights under PyTorch
 * names and in PyTorch layout, loadable by `Module.loadStateDict` and by `safetensors.torch`),
 * `optimizer.safetensors` (the optimizer's moments/buffers under `<name>.<slot>`), and
 * `trainer_state.json` ({@link TrainerState}).
 */
export interface Checkpoint {
  /** Optimizer steps done when it was written. */
  step: number;
  /** `model.safetensors` bytes. */
  model: Uint8Array;
  /** `optimizer.safetensors` bytes. */
  optimizer: Uint8Array;
  /** `trainer_state.json` contents. */
  state: TrainerState;
}

/**
 * Where checkpoints go. A store writes each checkpoint atomically (a reader never sees half of
 * one) and keeps the last K. `@vlm/train/node` has a file-system store; {@link MemoryCheckpointStore}
 * works anywhere, and a browser app can implement this interface over IndexedDB or OPFS.
 */
export interface CheckpointStore {
  /** Writes `checkpoint` (replacing one of the same step), then drops the oldest beyond the limit. */
  save(checkpoint: Checkpoint): Promise<void>;
  /** The steps of the checkpoints held, ascending. */
  steps(): Promise<number[]>;
  /** The checkpoint of `step`; an `Error` if there is none. */
  load(step: number): Promise<Checkpoint>;
  /** The checkpoint with the highest step, or `null` when there is none. */
  latest(): Promise<Checkpoint | null>;
}

/** Options of {@link MemoryCheckpointStore}. */
export interface MemoryCheckpointStoreOptions {
  /** How many checkpoints to keep (the newest). Default: 3. */
  keepLast?: number;
}

/** Checks a `keepLast` option. */
export function checkKeepLast(keepLast: number, who: string): number {
  if (!(Number.isSafeInteger(keepLast) && keepLast >= 1)) throw new Error(`${who}: keepLast must be an integer >= 1, got ${keepLast}`);
  return keepLast;
}

const copy = (c: Checkpoint): Checkpoint => ({ step: c.step, model: c.model.slice(), optimizer: c.optimizer.slice(), state: JSON.parse(JSON.stringify(c.state)) as TrainerState });

/**
 * A {@link CheckpointStore} in memory (a browser tab, a test): keeps copies of the last
 * `keepLast` checkpoints.
 *
 * @example
 * ```ts
 * const store = new MemoryCheckpointStore({ keepLast: 2 });
 * const trainer = new Trainer({ ...options, checkpoints: { store, every: 100 } });
 * ```
 */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly held = new Map<number, Checkpoint>();
  /** How many checkpoints are kept. */
  readonly keepLast: number;

  /** @param options `keepLast` (default 3). */
  constructor(options: MemoryCheckpointStoreOptions = {}) {
    this.keepLast = checkKeepLast(options.keepLast ?? 3, 'MemoryCheckpointStore');
  }

  /** {@inheritDoc CheckpointStore.save} */
  async save(checkpoint: Checkpoint): Promise<void> {
    this.held.set(checkpoint.step, copy(checkpoint));
    const steps = [...this.held.keys()].sort((a, b) => a - b);
    for (const s of steps.slice(0, Math.max(0, steps.length - this.keepLast))) this.held.delete(s);
  }

  /** {@inheritDoc CheckpointStore.steps} */
  async steps(): Promise<number[]> {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** {@inheritDoc CheckpointStore.load} */
  async load(step: number): Promise<Checkpoint> {
    const c = this.held.get(step);
    if (!c) throw new Error(`MemoryCheckpointStore: no checkpoint of step ${step} (held: ${(await this.steps()).join(', ') || 'none'})`);
    return copy(c);
  }

  /** {@inheritDoc CheckpointStore.latest} */
  async latest(): Promise<Checkpoint | null> {
    const steps = await this.steps();
    return steps.length ? this.load(steps[steps.length - 1]!) : null;
  }
}
