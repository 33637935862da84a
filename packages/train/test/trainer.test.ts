import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '@vlm/core';
import { AdamW, MemoryCheckpointStore, NonFiniteError, Trainer, cosineScheduleWithWarmup, namedParameters, weightDecayGroups, type Dataset } from '@vlm/train';
import { TinyNet, mse, tinyData, weightBits } from './fixtures';

function makeTrainer(net: TinyNet, data: Dataset<Record<'x' | 'y', tf.Tensor>>, store: MemoryCheckpointStore, steps: number) {
  const optimizer = new AdamW(weightDecayGroups(namedParameters(net), { weightDecay: 0.1 }), { lr: 1e-2 });
  return new Trainer({
    optimizer,
    data,
    batchSize: 3,
    steps,
    loss: mse(net),
    schedule: cosineScheduleWithWarmup({ warmupSteps: 5, trainingSteps: 40 }),
    clipGradNorm: 1,
    accumulationSteps: 2,
    seed: 7,
    checkpoints: { store, every: 10 },
  });
}

describe('Trainer', () => {
  it('40 steps straight equal 20 + restore + 20: identical losses, bit-identical weights', async () => {
    const { data, dispose } = tinyData();
    const before = tf.memory().numTensors;
    const a = new TinyNet(1);
    const ta = makeTrainer(a, data, new MemoryCheckpointStore(), 40);
    const straight = await ta.fit();
    expect(straight.losses).toHaveLength(40);

    const store = new MemoryCheckpointStore({ keepLast: 2 });
    const b1 = new TinyNet(1);
    const tb1 = makeTrainer(b1, data, store, 20);
    const first = await tb1.fit();
    expect(await store.steps()).toEqual([10, 20]);
    // a fresh process: other initial weights, a new optimizer, then restore
    const b2 = new TinyNet(99);
    const tb2 = makeTrainer(b2, data, store, 40);
    expect(await tb2.restore()).toBe(20);
    const second = await tb2.fit();
    expect([...first.losses, ...second.losses]).toEqual(straight.losses);
    expect(weightBits(b2)).toEqual(weightBits(a));
    for (const t of [ta, tb1, tb2]) t.dispose();
    for (const m of [a, b1, b2]) m.dispose();
    expect(tf.memory().numTensors).toBe(before);
    dispose();
  });

  it('checkpoint weights are a PyTorch-layout state dict that loadStateDict accepts', async () => {
    const { data, dispose } = tinyData();
    const net = new TinyNet(2);
    const store = new MemoryCheckpointStore();
    const t = makeTrainer(net, data, store, 10);
    await t.fit();
    const c = (await store.latest())!;
    const { tensors } = readSafetensors(c.model);
    expect(tensors['fc1.weight']!.shape).toEqual([8, 6]);
    const other = new TinyNet(3);
    other.loadStateDict(tensors);
    expect(weightBits(other)).toEqual(weightBits(net));
    expect(c.state.step).toBe(10);
    tf.dispose(Object.values(tensors));
    t.dispose();
    net.dispose();
    other.dispose();
    dispose();
  });

  it('a NaN in one batch stops with an error naming the step and the first variable; weights unchanged', async () => {
    const { x, y, dispose } = tinyData();
    const net = new TinyNet(4);
    const store = new MemoryCheckpointStore();
    const poisoned: Dataset<Record<'x' | 'y', tf.Tensor>> = {
      size: 20,
      batch: (idx) => tf.tidy(() => {
        const xb = tf.gather(x, idx);
        return { x: idx.includes(13) ? tf.mul(xb, NaN) : xb, y: tf.gather(y, idx) };
      }),
    };
    const optimizer = new AdamW(namedParameters(net), { lr: 1e-2 });
    const t = new Trainer({ optimizer, data: poisoned, batchSize: 4, steps: 20, loss: mse(net), shuffle: false, checkpoints: { store, every: 1 } });
    const err = await t.fit().catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect((err as NonFiniteError).step).toBe(4);
    expect((err as NonFiniteError).variable).toBe('gate'); // own weights come first in state-dict order
    expect(String(err.message)).toMatch(/at step 4 .*'gate'/);
    expect(t.step).toBe(3);
    const last = (await store.latest())!;
    expect(last.step).toBe(3);
    const { tensors } = readSafetensors(last.model);
    const check = new TinyNet(5);
    check.loadStateDict(tensors);
    expect(weightBits(check)).toEqual(weightBits(net));
    tf.dispose(Object.values(tensors));
    t.dispose();
    net.dispose();
    check.dispose();
    dispose();
  });
});
