// A checkpoint written here loads in PyTorch (golden/scripts/load_train_checkpoint.py): the
// weights into the same module with load_state_dict(strict=True) (same forward), the optimizer
// state as torch.optim.AdamW's, and one more AdamW step there equals one more step here.
// Needs /usr/bin/python3 with torch (as the golden scripts do); skipped where there is none.
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AdamW, Trainer, namedParameters, tensorDataset } from '@vlm/train';
import { FileCheckpointStore } from '@vlm/train/node';
import { TinyNet, mse, tinyData } from './fixtures';

const script = resolve(__dirname, '../../../golden/scripts/load_train_checkpoint.py');
const torchAvailable = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

describe('checkpoints in PyTorch', () => {
  it.runIf(torchAvailable)('model.safetensors loads strictly into the PyTorch module; AdamW state continues there as here', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vlm-train-pt-'));
    const { data, dispose } = tinyData();
    const net = new TinyNet(4);
    const opts = { lr: 1e-2, weightDecay: 0.05 };
    const trainer = new Trainer({ optimizer: new AdamW(namedParameters(net), opts), data, batchSize: 5, steps: 7, loss: mse(net), checkpoints: { store: new FileCheckpointStore(dir), every: 7 } });
    try {
      await trainer.fit();
      const x = tf.randomNormal([4, 6], 0, 1, 'float32', 21);
      const y = tf.randomNormal([4, 3], 0, 1, 'float32', 22);
      const ours = tf.tidy(() => net.forward(x));
      const batchFile = join(dir, 'batch.json');
      writeFileSync(batchFile, JSON.stringify({ x: x.arraySync(), y: y.arraySync(), ...{ lr: opts.lr, weight_decay: opts.weightDecay } }));
      const run = spawnSync('/usr/bin/python3', [script, join(dir, 'checkpoint-7'), batchFile], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      const torch = JSON.parse(run.stdout) as { out: number[][]; weights: Record<string, number[]> };
      const close = (a: ArrayLike<number>, b: ArrayLike<number>, rel: number) => {
        const scale = Math.max(...Array.from(b, Math.abs));
        Array.from(a).forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(rel * scale + 1e-7));
      };
      close(ours.dataSync(), torch.out.flat(), 1e-5);
      // one more AdamW step here, on the same batch, from the same optimizer state
      const one = new Trainer({ optimizer: trainer.optimizer, data: tensorDataset({ x, y }), batchSize: 4, steps: 1, shuffle: false, loss: mse(net) });
      await one.trainStep();
      for (const [name, v] of net.namedParameters()) {
        const t = net.toStateDictLayout(name, v);
        close(t.dataSync(), torch.weights[name]!, 1e-5);
        t.dispose();
      }
      tf.dispose([x, y, ours]);
    } finally {
      trainer.dispose();
      net.dispose();
      dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
