// No leak: tf.memory().numTensors is constant over 500 training steps (after the first step
// creates the optimizer's moments), with accumulation, clipping, a schedule, tracking,
// evaluation and checkpoints on.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AdamW, MemoryCheckpointStore, Trainer, linearScheduleWithWarmup, namedParameters, paramGroups } from '@vlm/train';
import { TinyNet, mse, tinyData } from './fixtures';

describe('Trainer memory', () => {
  it('tf.memory().numTensors is constant over 500 steps', async () => {
    const start = tf.memory().numTensors;
    const { data, x, y, dispose } = tinyData();
    const net = new TinyNet(3);
    const counts: number[] = [];
    const trainer = new Trainer({
      optimizer: new AdamW(paramGroups(namedParameters(net), [{ match: /bias|gate|norm/, weightDecay: 0 }]), { lr: 1e-3 }),
      data,
      batchSize: 4,
      steps: 500,
      accumulationSteps: 2,
      clipGradNorm: 0.5,
      schedule: linearScheduleWithWarmup({ warmupSteps: 10, trainingSteps: 500 }),
      loss: mse(net),
      track: () => ({ gate: Math.tanh(net.namedParameters()[0]![1].dataSync()[0]!) }),
      evaluate: { every: 100, run: () => ({ loss: tf.tidy(() => mse(net)({ x, y }).dataSync()[0]!) }) },
      checkpoints: { store: new MemoryCheckpointStore({ keepLast: 1 }), every: 100 },
      callbacks: [{ onStep: () => void counts.push(tf.memory().numTensors) }],
    });
    const result = await trainer.fit();
    expect(result.step).toBe(500);
    expect(counts).toHaveLength(500);
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(counts[499]).toBe(counts[0]);
    trainer.dispose();
    net.dispose();
    dispose();
    expect(tf.memory().numTensors).toBe(start);
  }, 120_000);
});
