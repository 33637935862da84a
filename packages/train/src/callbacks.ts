/** The metrics of one optimizer step, passed to {@link TrainerCallbacks.onStep}. */
export interface StepMetrics {
  /** Optimizer steps done, this one included (1-based). */
  step: number;
  /** The steps the run trains in all. */
  totalSteps: number;
  /** Epoch of the step's (last) batch, 0-based. */
  epoch: number;
  /** The loss: the mean of the step's micro-batch losses (one per accumulated batch). */
  loss: number;
  /** The learning rate of the first group in this step (base lr × schedule factor). */
  lr: number;
  /** Every group's learning rate in this step, by group name. */
  lrs: Record<string, number>;
  /** The global gradient L2 norm before clipping. */
  gradNorm: number;
  /** Optimizer steps per second over this `fit` so far. */
  stepsPerSecond: number;
  /** Scalars from the `track` option (e.g. every gate's `tanh(α)`), by name. */
  tracked: Record<string, number>;
}

/** The metrics of an evaluation, passed to {@link TrainerCallbacks.onEval}. */
export interface EvalMetrics {
  /** Optimizer steps done when it ran. */
  step: number;
  /** What the `evaluate` function returned. */
  metrics: Record<string, number>;
}

/** A written checkpoint, passed to {@link TrainerCallbacks.onCheckpoint}. */
export interface CheckpointEvent {
  /** Its step. */
  step: number;
  /** Size in bytes of the weights and of the optimizer state. */
  bytes: {
    /** `model.safetensors`. */
    model: number;
    /** `optimizer.safetensors`. */
    optimizer: number;
  };
}

/** The start of a `fit`, passed to {@link TrainerCallbacks.onStart}. */
export interface StartEvent {
  /** Steps already done (after a resume: the checkpoint's step). */
  step: number;
  /** The steps the run trains in all. */
  totalSteps: number;
}

/**
 * Hooks into training: progress bars, metric logs, custom reporting. Every hook may be async;
 * the trainer waits for it. A hook that throws stops training with that error.
 */
export interface TrainerCallbacks {
  /** Before the first step of `fit`. */
  onStart?(event: StartEvent): void | Promise<void>;
  /** After every optimizer step. */
  onStep?(metrics: StepMetrics): void | Promise<void>;
  /** After every evaluation. */
  onEval?(metrics: EvalMetrics): void | Promise<void>;
  /** After every checkpoint written. */
  onCheckpoint?(event: CheckpointEvent): void | Promise<void>;
  /** When `fit` ends (normally or by an error). */
  onEnd?(event: { step: number; error?: unknown }): void | Promise<void>;
}
