// A training process is killed with SIGKILL at random moments while it writes checkpoints, 20
// times; after every kill the latest checkpoint loads, and the next process resumes from it.
// The writer (fixtures/checkpoint-writer.mjs) runs on the BUILT @vlm/train: `pnpm build` first.
// Backend-independent (file I/O), so it runs once, on the cpu test pass.
import * as tf from '@tensorflow/tfjs-core';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSafetensors, seededRandom } from '@vlm/core';
import { AdamW, Trainer, namedParameters, tensorDataset } from '@vlm/train';
import { FileCheckpointStore } from '@vlm/train/node';
import { constantGradients } from './fixtures/constant-gradients.mjs';

const writer = fileURLToPath(new URL('./fixtures/checkpoint-writer.mjs', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/node.js', import.meta.url)));
const KILLS = 20;

/** Starts the writer; resolves with the step it resumed from and its exit once killed `delay` ms after its `saves`-th `saving` line. */
function runAndKill(dir: string, saves: number, delay: number): Promise<{ resumedFrom: number; savesSeen: number }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let resumedFrom = -1;
    let savesSeen = 0;
    let killing = false;
    child.stdout.on('data', (d: Buffer) => {
      out += String(d);
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const ready = /^ready (\d+)$/.exec(line);
        if (ready) resumedFrom = Number(ready[1]);
        if (line.startsWith('saving ')) savesSeen++;
        if (savesSeen >= saves && !killing) {
          killing = true;
          setTimeout(() => child.kill('SIGKILL'), delay);
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += String(d)));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolvePromise({ resumedFrom, savesSeen });
      else reject(new Error(`writer exited with ${code} before it was killed:\n${err}`));
    });
  });
}

describe.runIf((process.env.VLM_BACKEND ?? 'cpu') === 'cpu')('FileCheckpointStore under SIGKILL', () => {
  it.runIf(built)(`a writer killed ${KILLS} times mid-checkpoint: the latest checkpoint always loads and the next run resumes from it`, async () => {
    // two chains of writers in two folders, side by side (10 kills each), to halve the wall time
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'vlm-train-kill-')));
    const dir = dirs[0]!;
    let killedMidWrite = 0;
    const chain = async (folder: string, kills: number, seed: number): Promise<number> => {
      const rng = seededRandom(seed);
      let latestStep = 0;
      for (let k = 0; k < kills; k++) {
        // kill during the first write of this run (the second of the chain's first run, so that
        // one checkpoint exists), 0-100 ms after it began
        const { resumedFrom } = await runAndKill(folder, k === 0 ? 2 : 1, Math.floor(rng() * 100));
        expect(resumedFrom).toBe(latestStep); // resumed from the latest checkpoint the last kill left
        if (readdirSync(folder).some((n) => n.startsWith('.tmp-checkpoint-'))) killedMidWrite++;
        const latest = await new FileCheckpointStore(folder).latest();
        expect(latest).not.toBeNull();
        expect(latest!.step).toBeGreaterThanOrEqual(latestStep);
        expect(latest!.state.step).toBe(latest!.step);
        const model = readSafetensors(latest!.model).tensors;
        const opt = readSafetensors(latest!.optimizer).tensors;
        expect(Object.keys(model).sort()).toEqual(['b', 'w']);
        expect(Object.keys(opt).sort()).toEqual(['b.exp_avg', 'b.exp_avg_sq', 'w.exp_avg', 'w.exp_avg_sq']);
        expect(latest!.state.optimizer.steps).toEqual({ w: latest!.step, b: latest!.step });
        tf.dispose([...Object.values(model), ...Object.values(opt)]);
        latestStep = latest!.step;
      }
      return latestStep;
    };
    try {
      const [latestStep] = await Promise.all([chain(dirs[0]!, KILLS / 2, 2024), chain(dirs[1]!, KILLS / 2, 2025)]);
      // the last checkpoint resumes here too, and training continues
      const w = tf.variable(tf.zeros([256, 1024]), true);
      const b = tf.variable(tf.zeros([1024]), true);
      const x = tf.randomNormal([8, 256], 0, 1, 'float32', 1);
      const trainer = new Trainer({
        optimizer: new AdamW(namedParameters([['w', w], ['b', b]]), { lr: 1e-3 }),
        data: tensorDataset({ x }),
        batchSize: 4,
        steps: 1e9,
        seed: 3,
        gradients: constantGradients(w, b),
        checkpoints: { store: new FileCheckpointStore(dir), every: 1000 },
      });
      expect(await trainer.restore()).toBe(latestStep!);
      const m = await trainer.trainStep();
      expect(m.step).toBe(latestStep! + 1);
      expect(Number.isFinite(m.loss)).toBe(true);
      trainer.dispose();
      tf.dispose([w, b, x]);
      expect(latestStep).toBeGreaterThan(0);
      console.log(`SIGKILL test: ${KILLS} kills, ${killedMidWrite} left a half-written temporary checkpoint behind, latest step ${latestStep}`);
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  }, 180_000);
});
