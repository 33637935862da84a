import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkKeepLast, type Checkpoint, type CheckpointStore, type TrainerState } from '../checkpoint';
import { fsyncDir, writeFileSynced } from './atomic-file';

/** Options of {@link FileCheckpointStore}. */
export interface FileCheckpointStoreOptions {
  /** How many checkpoints to keep (the newest). Default: 3. */
  keepLast?: number;
}

const NAME = /^checkpoint-(\d+)$/;

/**
 * Checkpoints in a folder, one sub-folder per step as Hugging Face's Trainer lays them out:
 * `checkpoint-<step>/model.safetensors`, `optimizer.safetensors`, `trainer_state.json`.
 *
 * Each checkpoint is written atomically: the three files go into a temporary folder, each is
 * fsynced, the folder is fsynced and renamed to `checkpoint-<step>`, and the parent folder is
 * fsynced. A process killed at any moment leaves either the whole new checkpoint or none of
 * it; older checkpoints are pruned (beyond `keepLast`) only after the new one is in place, and
 * are renamed away before they are deleted, so every `checkpoint-<step>` folder is complete.
 * Leftover temporary folders of a killed writer are removed by the next `save`.
 *
 * @example
 * ```ts
 * import { FileCheckpointStore } from '@vlm/train/node';
 * const store = new FileCheckpointStore('runs/flamingo', { keepLast: 2 });
 * const trainer = new Trainer({ ...options, checkpoints: { store, every: 100 } });
 * await trainer.restore(); // resumes from runs/flamingo/checkpoint-<highest step>, if any
 * ```
 */
export class FileCheckpointStore implements CheckpointStore {
  /** The folder. */
  readonly dir: string;
  /** How many checkpoints are kept. */
  readonly keepLast: number;

  /**
   * @param dir the folder (created on first save).
   * @param options `keepLast` (default 3).
   */
  constructor(dir: string, options: FileCheckpointStoreOptions = {}) {
    this.dir = dir;
    this.keepLast = checkKeepLast(options.keepLast ?? 3, 'FileCheckpointStore');
  }

  /** The folder of the checkpoint of `step`. */
  pathOf(step: number): string {
    return join(this.dir, `checkpoint-${step}`);
  }

  /** Writes `checkpoint` atomically (replacing one of the same step), then drops the oldest beyond `keepLast`. */
  async save(checkpoint: Checkpoint): Promise<void> {
    if (!(Number.isSafeInteger(checkpoint.step) && checkpoint.step >= 0)) throw new Error(`FileCheckpointStore.save: step must be an integer >= 0, got ${checkpoint.step}`);
    mkdirSync(this.dir, { recursive: true });
    this.removeLeftovers();
    const tmp = join(this.dir, `.tmp-checkpoint-${checkpoint.step}-${process.pid}-${Date.now()}`);
    mkdirSync(tmp);
    writeFileSynced(join(tmp, 'model.safetensors'), checkpoint.model);
    writeFileSynced(join(tmp, 'optimizer.safetensors'), checkpoint.optimizer);
    writeFileSynced(join(tmp, 'trainer_state.json'), `${JSON.stringify(checkpoint.state, null, 2)}\n`);
    fsyncDir(tmp);
    const target = this.pathOf(checkpoint.step);
    if (existsSync(target)) this.discard(target);
    renameSync(tmp, target);
    fsyncDir(this.dir);
    const steps = await this.steps();
    for (const s of steps.slice(0, Math.max(0, steps.length - this.keepLast))) this.discard(this.pathOf(s));
  }

  /** The steps of the checkpoints held, ascending. */
  async steps(): Promise<number[]> {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .map((n) => NAME.exec(n))
      .filter((m): m is RegExpExecArray => m !== null && statSync(join(this.dir, m[0])).isDirectory())
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  /** The checkpoint of `step`; an `Error` if there is none or a file cannot be read. */
  async load(step: number): Promise<Checkpoint> {
    const dir = this.pathOf(step);
    if (!existsSync(dir)) throw new Error(`FileCheckpointStore: no checkpoint of step ${step} in ${this.dir} (held: ${(await this.steps()).join(', ') || 'none'})`);
    const read = (name: string) => {
      try {
        return readFileSync(join(dir, name));
      } catch (e) {
        throw new Error(`FileCheckpointStore: cannot read ${join(dir, name)}: ${(e as Error).message}`);
      }
    };
    const text = read('trainer_state.json').toString('utf8');
    let state: TrainerState;
    try {
      state = JSON.parse(text) as TrainerState;
    } catch (e) {
      throw new Error(`FileCheckpointStore: ${join(dir, 'trainer_state.json')} is not valid JSON: ${(e as Error).message}`);
    }
    const bytes = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return { step, model: bytes(read('model.safetensors')), optimizer: bytes(read('optimizer.safetensors')), state };
  }

  /** The checkpoint with the highest step, or `null` when there is none. */
  async latest(): Promise<Checkpoint | null> {
    const steps = await this.steps();
    return steps.length ? this.load(steps[steps.length - 1]!) : null;
  }

  /** Renames a checkpoint folder out of the way, then deletes it. */
  private discard(path: string): void {
    const trash = join(this.dir, `.trash-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    renameSync(path, trash);
    fsyncDir(this.dir);
    rmSync(trash, { recursive: true, force: true });
  }

  /** Removes temporary and trash folders a killed writer left behind. */
  private removeLeftovers(): void {
    for (const n of readdirSync(this.dir)) if (n.startsWith('.tmp-checkpoint-') || n.startsWith('.trash-')) rmSync(join(this.dir, n), { recursive: true, force: true });
  }
}
