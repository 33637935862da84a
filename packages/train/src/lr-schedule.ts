/** The kinds of learning-rate schedule, named after Hugging Face's `get_*_schedule_with_warmup`. */
export type LrScheduleKind = 'cosine' | 'linear' | 'constant';

/** The JSON description of a schedule (written into checkpoints). */
export interface LrScheduleConfig {
  /** Which schedule. */
  kind: LrScheduleKind;
  /** Steps of linear warm-up from 0. */
  warmupSteps: number;
  /** Total training steps (cosine and linear). */
  trainingSteps?: number;
  /** Cosine waves over training (cosine only). Default: 0.5, one half-wave down to 0. */
  numCycles?: number;
}

/**
 * A learning-rate schedule: `factor(step)` multiplies each group's base learning rate for the
 * optimizer step `step` (0-based), as a `torch.optim.lr_scheduler.LambdaLR` stepped once after
 * each optimizer step does (so the first step of a warm-up runs at factor 0, as in Hugging Face).
 */
export interface LrSchedule {
  /** The schedule as JSON. */
  readonly config: LrScheduleConfig;
  /** The factor for optimizer step `step` (0-based). */
  factor(step: number): number;
}

/** Options of the warm-up schedules. */
export interface WarmupScheduleOptions {
  /** Steps of linear warm-up (`step / warmupSteps`). */
  warmupSteps: number;
}

/** Options of {@link linearScheduleWithWarmup}. */
export interface LinearScheduleOptions extends WarmupScheduleOptions {
  /** Total training steps; the factor reaches 0 there. */
  trainingSteps: number;
}

/** Options of {@link cosineScheduleWithWarmup}. */
export interface CosineScheduleOptions extends LinearScheduleOptions {
  /** Number of cosine waves. Default: 0.5 (from 1 down to 0). */
  numCycles?: number;
}

const check = (name: string, o: Partial<LrScheduleConfig>) => {
  if (!(Number.isSafeInteger(o.warmupSteps) && o.warmupSteps! >= 0)) throw new Error(`${name}: warmupSteps must be an integer >= 0, got ${o.warmupSteps}`);
  if ('trainingSteps' in o && !(Number.isSafeInteger(o.trainingSteps) && o.trainingSteps! >= 0)) {
    throw new Error(`${name}: trainingSteps must be an integer >= 0, got ${o.trainingSteps}`);
  }
};

const checkStep = (step: number) => {
  if (!(Number.isSafeInteger(step) && step >= 0)) throw new Error(`LrSchedule.factor: step must be an integer >= 0, got ${step}`);
};

/**
 * Hugging Face's `get_cosine_schedule_with_warmup`: `step / max(1, warmup)` during warm-up,
 * then `max(0, ½·(1 + cos(π · 2·numCycles · progress)))` with
 * `progress = (step − warmup) / max(1, training − warmup)`.
 *
 * @example
 * ```ts
 * const schedule = cosineScheduleWithWarmup({ warmupSteps: 100, trainingSteps: 1000 });
 * schedule.factor(50); // 0.5
 * ```
 */
export function cosineScheduleWithWarmup(options: CosineScheduleOptions): LrSchedule {
  const config: LrScheduleConfig = { kind: 'cosine', warmupSteps: options.warmupSteps, trainingSteps: options.trainingSteps, numCycles: options.numCycles ?? 0.5 };
  check('cosineScheduleWithWarmup', config);
  return lrSchedule(config);
}

/**
 * Hugging Face's `get_linear_schedule_with_warmup`: `step / max(1, warmup)` during warm-up,
 * then `max(0, (training − step) / max(1, training − warmup))`.
 *
 * @example
 * ```ts
 * const schedule = linearScheduleWithWarmup({ warmupSteps: 10, trainingSteps: 110 });
 * schedule.factor(60); // 0.5
 * ```
 */
export function linearScheduleWithWarmup(options: LinearScheduleOptions): LrSchedule {
  const config: LrScheduleConfig = { kind: 'linear', warmupSteps: options.warmupSteps, trainingSteps: options.trainingSteps };
  check('linearScheduleWithWarmup', config);
  return lrSchedule(config);
}

/**
 * Hugging Face's `get_constant_schedule_with_warmup`: `step / max(1, warmup)` during warm-up,
 * then 1.
 *
 * @example
 * ```ts
 * constantScheduleWithWarmup({ warmupSteps: 4 }).factor(2); // 0.5
 * ```
 */
export function constantScheduleWithWarmup(options: WarmupScheduleOptions): LrSchedule {
  const config: LrScheduleConfig = { kind: 'constant', warmupSteps: options.warmupSteps };
  check('constantScheduleWithWarmup', config);
  return lrSchedule(config);
}

/**
 * The schedule a {@link LrScheduleConfig} describes (as read back from a checkpoint).
 *
 * @example
 * ```ts
 * const again = lrSchedule(schedule.config);
 * ```
 */
export function lrSchedule(config: LrScheduleConfig): LrSchedule {
  const warmup = config.warmupSteps;
  const total = config.trainingSteps ?? 0;
  const warm = (step: number) => step / Math.max(1, warmup);
  let f: (step: number) => number;
  switch (config.kind) {
    case 'cosine': {
      const cycles = config.numCycles ?? 0.5;
      f = (step) => {
        if (step < warmup) return warm(step);
        const progress = (step - warmup) / Math.max(1, total - warmup);
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
      };
      break;
    }
    case 'linear':
      f = (step) => (step < warmup ? warm(step) : Math.max(0, (total - step) / Math.max(1, total - warmup)));
      break;
    case 'constant':
      f = (step) => (step < warmup ? warm(step) : 1);
      break;
    default:
      throw new Error(`lrSchedule: unknown kind '${(config as { kind: unknown }).kind}', expected cosine, linear or constant`);
  }
  return {
    config: { ...config },
    factor(step: number) {
      checkStep(step);
      return f(step);
    },
  };
}
