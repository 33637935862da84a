import cliProgress from 'cli-progress';
import type { EvalMetrics, StartEvent, StepMetrics, TrainerCallbacks } from '../callbacks';

/** Options of {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Where to draw. Default: `process.stderr`. */
  stream?: NodeJS.WriteStream;
  /**
   * Plain log lines instead of a bar. Default: when the stream is not a terminal or the `CI`
   * environment variable is set.
   */
  plain?: boolean;
  /** In plain mode, one line every this many steps. Default: a twentieth of the run (at least 1). */
  every?: number;
  /** A label in front of the bar or lines. Default: `train`. */
  label?: string;
}

const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(2)) : String(x));

const duration = (s: number) => {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
};

/**
 * Trainer callbacks that show progress: on a terminal a `cli-progress` bar (step/total, steps/s,
 * ETA, loss); when not a terminal or in CI, plain lines such as
 * `train step 40/200 (20%) loss 1.2345 lr 1.00e-4 1.9 steps/s ETA 1m24s`.
 *
 * @example
 * ```ts
 * import { ProgressBar } from '@vlm/train/node';
 * new Trainer({ ...options, callbacks: [new ProgressBar()] });
 * ```
 */
export class ProgressBar implements TrainerCallbacks {
  private readonly stream: NodeJS.WriteStream;
  private readonly plain: boolean;
  private readonly label: string;
  private readonly everyOption: number | undefined;
  private every = 1;
  private bar: cliProgress.SingleBar | null = null;

  /** @param options where and how to draw. */
  constructor(options: ProgressBarOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.plain = options.plain ?? (!this.stream.isTTY || Boolean(process.env.CI));
    this.label = options.label ?? 'train';
    this.everyOption = options.every;
  }

  /** Starts the bar (or prints the first line). */
  onStart(e: StartEvent): void {
    this.every = this.everyOption ?? Math.max(1, Math.floor(e.totalSteps / 20));
    if (this.plain) {
      this.stream.write(`${this.label}: ${e.step === 0 ? 'starting' : `resuming at step ${e.step}`}, ${e.totalSteps} steps\n`);
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: `${this.label} |{bar}| {value}/{total} | {speed} steps/s | ETA {eta_formatted} | loss {loss}`,
        hideCursor: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(e.totalSteps, e.step, { speed: '-', loss: '-' });
  }

  /** Advances the bar (or prints a line every `every` steps). */
  onStep(m: StepMetrics): void {
    if (this.bar) {
      this.bar.update(m.step, { speed: m.stepsPerSecond.toFixed(2), loss: fmt(m.loss) });
      return;
    }
    if (m.step % this.every !== 0 && m.step !== m.totalSteps) return;
    const eta = (m.totalSteps - m.step) / m.stepsPerSecond;
    const pct = m.totalSteps ? Math.round((100 * m.step) / m.totalSteps) : 100;
    this.stream.write(
      `${this.label} step ${m.step}/${m.totalSteps} (${pct}%) loss ${fmt(m.loss)} lr ${m.lr.toExponential(2)} grad norm ${fmt(m.gradNorm)} ${m.stepsPerSecond.toFixed(2)} steps/s ETA ${duration(eta)}\n`,
    );
  }

  /** Prints the evaluation (plain mode). */
  onEval(m: EvalMetrics): void {
    const line = `${this.label} eval at step ${m.step}: ${Object.entries(m.metrics)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ')}\n`;
    if (!this.bar) this.stream.write(line);
  }

  /** Stops the bar (or prints the last line). */
  onEnd(e: { step: number; error?: unknown }): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = null;
    }
    if (this.plain) this.stream.write(`${this.label}: ${e.error ? `stopped by an error at step ${e.step}` : `done, ${e.step} steps`}\n`);
  }
}
