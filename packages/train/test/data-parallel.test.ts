// @vlm/data-parallel's DataParallel.grads plugs into the Trainer as a gradient source (no
// dependency of @vlm/train on it): the weights after 8 AdamW steps (accumulation 2, clipping,
// schedule) equal the main-thread run's within 1e-5. The worker runs the BUILT data-parallel.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DataParallel } from '@vlm/data-parallel';
import { AdamW, Trainer, cosineScheduleWithWarmup, namedParameters, weightDecayGroups, type Dataset, type GradientSource } from '@vlm/train';
import { mlp, type Mlp } from './fixtures/mlp.mjs';

const built = existsSync(fileURLToPath(new URL('../../data-parallel/dist/index.js', import.meta.url)));

function trainer(model: Mlp, data: Dataset<tf.Tensor[]>, source: { loss?: (b: tf.Tensor[]) => tf.Scalar; gradients?: GradientSource<tf.Tensor[]> }) {
  return new Trainer({
    optimizer: new AdamW(weightDecayGroups(namedParameters(model.named()), { weightDecay: 0.05 }), { lr: 2e-2 }),
    data,
    batchSize: 5,
    steps: 8,
    accumulationSteps: 2,
    clipGradNorm: 1,
    schedule: cosineScheduleWithWarmup({ warmupSteps: 2, trainingSteps: 8 }),
    seed: 4,
    ...source,
  });
}

describe('a DataParallel gradient source', () => {
  it.runIf(built)('gives the weights of the main-thread run within 1e-5', async () => {
    const x = tf.randomNormal([30, 6], 0, 1, 'float32', 5);
    const y = tf.randomNormal([30, 3], 0, 1, 'float32', 6);
    const data: Dataset<tf.Tensor[]> = { size: 30, batch: (idx) => tf.tidy(() => [tf.gather(x, idx), tf.gather(y, idx)]) };
    const before = tf.memory().numTensors;

    const main = mlp({ prefix: 'main' });
    const t1 = trainer(main, data, { loss: (b) => main.loss(b, b[0]!.shape[0]!) });
    const r1 = await t1.fit();

    const par = mlp({ prefix: 'par' });
    const dp = await DataParallel.start({ worker: new URL('./fixtures/dp-worker.mjs', import.meta.url), workers: 2, parameters: par.named(), data: { backend: tf.getBackend() } });
    try {
      const t2 = trainer(par, data, { gradients: (batch) => dp.grads(batch) });
      const r2 = await t2.fit();
      r1.losses.forEach((l, i) => expect(Math.abs(l - r2.losses[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(l)));
      for (let i = 0; i < main.parameters.length; i++) {
        const [a, b] = [main.parameters[i]!.dataSync(), par.parameters[i]!.dataSync()];
        const scale = Math.max(...Array.from(a, Math.abs));
        const diff = Math.max(...Array.from(a, (v, j) => Math.abs(v - b[j]!)));
        expect(diff).toBeLessThanOrEqual(1e-5 * scale);
      }
      t2.dispose();
    } finally {
      await dp.close();
    }
    t1.dispose();
    main.dispose();
    par.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
  });
});
