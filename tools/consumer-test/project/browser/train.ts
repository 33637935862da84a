// @vlm/train in a browser bundle (cpu backend only): a Trainer with AdamW, a schedule and
// in-memory checkpoints; a second trainer resumes from the checkpoint.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import { Linear, manualSeed, selectBackend } from '@vlm/core';
import { AdamW, MemoryCheckpointStore, Trainer, cosineScheduleWithWarmup, namedParameters, tensorDataset } from '@vlm/train';
import { report } from './report';

report(async () => {
  await selectBackend(['cpu']);
  manualSeed(0);
  const x = tf.randomNormal([32, 4], 0, 1, 'float32', 1);
  const data = tensorDataset({ x, y: tf.sum(x, 1, true) });
  const store = new MemoryCheckpointStore();
  const run = (model: Linear, steps: number) => new Trainer({
    optimizer: new AdamW(namedParameters({ model }), { lr: 0.05 }),
    data, batchSize: 8, steps, seed: 1, disposeBatches: false,
    loss: ({ x: xb, y: yb }) => tf.tidy(() => tf.mean(tf.square(tf.sub(model.forward(xb!), yb!))) as tf.Scalar),
    schedule: cosineScheduleWithWarmup({ warmupSteps: 1, trainingSteps: 20 }),
    checkpoints: { store, every: 10 },
  });
  const first = run(new Linear({ inFeatures: 4, outFeatures: 1 }), 10);
  const a = await first.fit();
  const second = run(new Linear({ inFeatures: 4, outFeatures: 1 }), 20);
  await second.restore();
  const b = await second.fit();
  if (!(b.losses.length === 10 && b.losses.at(-1)! < a.losses[0]!)) throw new Error(`losses ${a.losses} / ${b.losses}`);
  return `trained 10 steps, resumed from the checkpoint for 10 more: loss ${a.losses[0]!.toFixed(3)} → ${b.losses.at(-1)!.toFixed(3)}`;
});
