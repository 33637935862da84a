// @vlm/train/node: folder checkpoints (keep last K), the frozen-feature cache in memory and on
// disk, the JSON-lines metrics log and the plain-text progress lines.
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSafetensors } from './load-safetensors';
import { AdamW, FeatureCache, MemoryFeatureStore, Trainer, featureCacheId, namedParameters } from '@vlm/train';
import { FileCheckpointStore, JsonlMetricsLog, ProgressBar, SafetensorsFeatureStore } from '@vlm/train/node';
import { TinyNet, mse, tinyData, weightBits } from './fixtures';

let dir = '';
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'vlm-train-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('FileCheckpointStore', () => {
  it('writes checkpoint-<step>/{model,optimizer}.safetensors + trainer_state.json, keeps the last K, resumes', async () => {
    const { data, dispose } = tinyData();
    const net = new TinyNet(1);
    const log = join(dir, 'metrics.jsonl');
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
    const options = (m: TinyNet, steps: number) => ({
      optimizer: new AdamW(namedParameters(m), { lr: 1e-2 }),
      data,
      batchSize: 4,
      steps,
      loss: mse(m),
      checkpoints: { store: new FileCheckpointStore(join(dir, 'run'), { keepLast: 2 }), every: 3 },
      track: () => ({ 'gate.tanh': Math.tanh(m.namedParameters()[0]![1].dataSync()[0]!) }),
      evaluate: { every: 5, run: () => ({ heldout: 1.5 }) },
      callbacks: [new JsonlMetricsLog(log), new ProgressBar({ stream, every: 5 })],
    });
    const t = new Trainer(options(net, 10));
    await t.fit();
    expect(readdirSync(join(dir, 'run')).sort()).toEqual(['checkpoint-10', 'checkpoint-9']);
    expect(readdirSync(join(dir, 'run', 'checkpoint-10')).sort()).toEqual(['model.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    const state = JSON.parse(readFileSync(join(dir, 'run', 'checkpoint-10', 'trainer_state.json'), 'utf8'));
    expect(state).toMatchObject({ format: 'vlm-train/1', step: 10, epoch: 2, batchInEpoch: 0, batchesDrawn: 10, rng: { seed: 0, shuffle: true } });
    const weights = loadSafetensors(join(dir, 'run', 'checkpoint-10', 'model.safetensors'));
    expect(weights['fc2.weight']!.shape).toEqual([3, 8]);
    tf.dispose(Object.values(weights));

    const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.filter((r) => r.type === 'step')).toHaveLength(10);
    expect(records[0]).toMatchObject({ type: 'step', step: 1, epoch: 0 });
    expect(Object.keys(records[0])).toEqual(['type', 'step', 'epoch', 'loss', 'lr', 'grad_norm', 'steps_per_s', 'gate.tanh']);
    expect(records.filter((r) => r.type === 'eval')).toEqual([{ type: 'eval', step: 5, heldout: 1.5 }, { type: 'eval', step: 10, heldout: 1.5 }]);
    expect(records.filter((r) => r.type === 'checkpoint').map((r) => r.step)).toEqual([3, 6, 9, 10]);
    expect(lines[0]).toBe('train: starting, 10 steps\n');
    expect(lines[1]).toMatch(/^train step 5\/10 \(50%\) loss \d\.\d{4} lr 1\.00e-2 grad norm [\d.]+ [\d.]+ steps\/s ETA \d+s\n$/);
    expect(lines.at(-1)).toBe('train: done, 10 steps\n');

    const again = new TinyNet(7);
    const t2 = new Trainer(options(again, 10));
    expect(await t2.restore()).toBe(10);
    expect(weightBits(again)).toEqual(weightBits(net));
    for (const x of [t, t2]) x.dispose();
    net.dispose();
    again.dispose();
    dispose();
  });

  it('an empty folder has no latest checkpoint; loading a missing step names what is held', async () => {
    const store = new FileCheckpointStore(join(dir, 'none'));
    expect(await store.latest()).toBeNull();
    await expect(store.load(4)).rejects.toThrow(/no checkpoint of step 4 .*held: none/);
  });
});

describe('FeatureCache', () => {
  it('encodes once; a second build with the same key loads from the store (memory or safetensors on disk)', async () => {
    for (const store of [new MemoryFeatureStore(), new SafetensorsFeatureStore(join(dir, 'features'))]) {
      let calls = 0;
      const encode = (idx: number[]) => (calls++, tf.tidy(() => tf.mul(tf.reshape(tf.tensor1d(idx), [-1, 1, 1]), tf.ones([1, 2, 3]))));
      const key = { encoder: 'toy encoder @ layer 2', preprocessing: { size: 8, mean: [0.5] } };
      const a = await FeatureCache.build({ key, size: 5, batchSize: 2, encode, store });
      expect(calls).toBe(3);
      expect(a.fromStore).toBe(false);
      expect(a.features.shape).toEqual([5, 2, 3]);
      const g = a.gather([4, 1]);
      expect(Array.from(g.dataSync())).toEqual([4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1]);
      const b = await FeatureCache.build({ key: { preprocessing: { mean: [0.5], size: 8 }, encoder: 'toy encoder @ layer 2' }, size: 5, encode, store });
      expect(calls).toBe(3); // no encoder run
      expect(b.fromStore).toBe(true);
      expect(Array.from(b.features.dataSync())).toEqual(Array.from(a.features.dataSync()));
      const c = await FeatureCache.build({ key: { ...key, preprocessing: { size: 16 } }, size: 5, encode, store });
      expect(c.fromStore).toBe(false);
      expect(featureCacheId(c.key)).not.toBe(featureCacheId(key));
      for (const x of [a, b, c]) x.dispose();
      g.dispose();
    }
    expect(readdirSync(join(dir, 'features')).every((n) => /^toy_encoder_layer_2-[0-9a-f]{16}\.safetensors$/.test(n))).toBe(true);
  });

  it('says what is wrong with a bad encode', async () => {
    await expect(FeatureCache.build({ key: { encoder: 'e', preprocessing: '' }, size: 3, encode: () => tf.zeros([2, 4]) })).rejects.toThrow(/returned shape \[2,4\], expected \[3, \.\.\.\]/);
  });
});

describe('ProgressBar on a terminal', () => {
  it('draws a cli-progress bar with step/total, steps/s, ETA and loss', async () => {
    const { data, dispose } = tinyData();
    const net = new TinyNet(2);
    let out = '';
    const tty = {
      isTTY: true,
      columns: 120,
      write: (s: string) => ((out += s), true),
      cursorTo: () => true,
      clearLine: () => true,
      clearScreenDown: () => true,
      moveCursor: () => true,
      on: () => tty,
      removeListener: () => tty,
    } as unknown as NodeJS.WriteStream;
    const prev = process.env.CI;
    delete process.env.CI;
    try {
      const t = new Trainer({ optimizer: new AdamW(namedParameters(net)), data, batchSize: 5, steps: 6, loss: mse(net), callbacks: [new ProgressBar({ stream: tty, label: 'tiny' })] });
      await t.fit();
      t.dispose();
    } finally {
      if (prev !== undefined) process.env.CI = prev;
    }
    expect(out).toMatch(/tiny \|[█░]+\| 6\/6 \| [\d.]+ steps\/s \| ETA \d+s \| loss \d\.\d{4}/);
    expect(out).not.toMatch(/train step/);
    net.dispose();
    dispose();
  });
});
