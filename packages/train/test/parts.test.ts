// The parts: parameter naming and refusal of frozen weights, groups, schedules, clipping, data
// order, tensor data sets, optimizer state round trips and errors.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import { freeze } from '@vlm/core';
import {
  AdamW,
  DataOrder,
  SGD,
  Trainer,
  FLAMINGO_GATE_PATTERN,
  clipGradNorm,
  clipGradNormAsync,
  flamingoParamGroups,
  constantScheduleWithWarmup,
  cosineScheduleWithWarmup,
  linearScheduleWithWarmup,
  lrSchedule,
  microBatchGradients,
  variableGradients,
  namedParameters,
  paramGroups,
  tensorDataset,
  weightDecayGroups,
} from '@vlm/train';
import { TinyNet, mse, tinyData } from './fixtures';

describe('namedParameters', () => {
  it('takes trainable weights under PyTorch names, with layouts, and prefixes modules by key', () => {
    const net = new TinyNet();
    const names = namedParameters({ bridge: net }).map((p) => `${p.name}:${p.layout}`);
    expect(names).toEqual(['bridge.gate:same', 'bridge.fc1.weight:transposed', 'bridge.fc1.bias:same', 'bridge.norm.weight:same', 'bridge.norm.bias:same', 'bridge.fc2.weight:transposed', 'bridge.fc2.bias:same']);
    freeze(net.fc1);
    expect(namedParameters(net).map((p) => p.name)).not.toContain('fc1.weight');
    net.dispose();
  });

  it('refuses a variable marked not trainable, naming it', () => {
    const v = tf.variable(tf.zeros([2]), false, 'frozen_thing');
    expect(() => namedParameters([v])).toThrow(/'frozen_thing' is not trainable/);
    expect(() => namedParameters([['lm.wte', v]])).toThrow(/'lm.wte' is not trainable/);
    const w = tf.variable(tf.zeros([2]), true);
    const p = namedParameters([['w', w]]);
    w.trainable = false;
    expect(() => new AdamW(p)).toThrow(/parameter 'w' is not trainable/);
    const net = new TinyNet();
    expect(() => namedParameters(freeze(net))).toThrow(/no trainable weights/);
    tf.dispose([v, w]);
    net.dispose();
  });

  it('refuses duplicate names and one variable twice', () => {
    const w = tf.variable(tf.zeros([2]), true);
    expect(() => namedParameters([['a', w], ['b', w]])).toThrow(/listed twice, as 'a' and 'b'/);
    w.dispose();
  });
});

describe('parameter groups', () => {
  it('first matching rule wins; the rest form `default`; weightDecayGroups exempts biases, norms, gates', () => {
    const net = new TinyNet();
    const params = namedParameters(net);
    const groups = paramGroups(params, [{ name: 'fc1', match: /^fc1\./, lr: 1 }, { name: 'w', match: /weight$/ }]);
    expect(groups.map((g) => [g.name, g.params.map((p) => p.name)])).toEqual([
      ['fc1', ['fc1.weight', 'fc1.bias']],
      ['w', ['norm.weight', 'fc2.weight']],
      ['default', ['gate', 'norm.bias', 'fc2.bias']],
    ]);
    const wd = weightDecayGroups(params, { weightDecay: 0.1 });
    expect(wd.map((g) => [g.name, g.weightDecay, g.params.map((p) => p.name)])).toEqual([
      ['no_decay', 0, ['gate', 'fc1.bias', 'norm.weight', 'norm.bias', 'fc2.bias']],
      ['decay', 0.1, ['fc1.weight', 'fc2.weight']],
    ]);
    const opt = new AdamW(wd, { lr: 3e-4 });
    expect(opt.groups.map((g) => [g.lr, g.weightDecay])).toEqual([[3e-4, 0], [3e-4, 0.1]]);
    expect(() => new AdamW([...wd, wd[0]!])).toThrow(/more than one group/);
    net.dispose();
  });
});

describe('schedules (Hugging Face formulas)', () => {
  it('cosine, linear and constant with warm-up', () => {
    const cos = cosineScheduleWithWarmup({ warmupSteps: 10, trainingSteps: 110 });
    expect(cos.factor(0)).toBe(0);
    expect(cos.factor(5)).toBe(0.5);
    expect(cos.factor(10)).toBe(1);
    expect(cos.factor(60)).toBeCloseTo(0.5, 12);
    expect(cos.factor(110)).toBeCloseTo(0, 12);
    expect(cos.factor(500)).toBeGreaterThanOrEqual(0);
    const lin = linearScheduleWithWarmup({ warmupSteps: 10, trainingSteps: 110 });
    expect([lin.factor(0), lin.factor(5), lin.factor(10), lin.factor(60), lin.factor(110), lin.factor(200)]).toEqual([0, 0.5, 1, 0.5, 0, 0]);
    const cst = constantScheduleWithWarmup({ warmupSteps: 4 });
    expect([cst.factor(0), cst.factor(2), cst.factor(4), cst.factor(1000)]).toEqual([0, 0.5, 1, 1]);
    expect(constantScheduleWithWarmup({ warmupSteps: 0 }).factor(0)).toBe(1);
    expect(lrSchedule(cos.config).factor(37)).toBe(cos.factor(37));
    expect(() => cos.factor(-1)).toThrow(/integer >= 0/);
    expect(() => cosineScheduleWithWarmup({ warmupSteps: 1.5, trainingSteps: 10 })).toThrow(/warmupSteps/);
  });
});

describe('clipGradNorm', () => {
  it('returns the norm before clipping and scales by maxNorm / (norm + 1e-6)', () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
    const { grads: clipped, totalNorm, norms } = clipGradNorm(grads, 1);
    expect(totalNorm).toBeCloseTo(5, 6);
    expect(norms).toEqual({ a: 3, b: 4 });
    expect(Array.from(clipped.a!.dataSync())[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    const same = clipGradNorm(grads, 10);
    expect(Array.from(same.grads.b!.dataSync())).toEqual([0, 4]);
    tf.dispose([...Object.values(grads), ...Object.values(clipped), ...Object.values(same.grads)]);
    expect(() => clipGradNorm({}, 0)).toThrow(/maxNorm/);
  });
});

describe('clipGradNormAsync', () => {
  it('gives clipGradNorm\'s gradients and norms bit for bit, with no synchronous read and no leak', async () => {
    const grads = { a: tf.randomNormal([7, 3], 0, 2, 'float32', 1), b: tf.randomNormal([5], 0, 3, 'float32', 2), c: tf.tensor1d([0.5]) };
    const before = tf.memory().numTensors;
    for (const maxNorm of [1, 1e6]) {
      const sync = clipGradNorm(grads, maxNorm);
      const reads = vi.spyOn(tf.engine(), 'readSync');
      const out = await clipGradNormAsync(grads, maxNorm);
      expect(reads.mock.calls.length).toBe(0);
      reads.mockRestore();
      expect(out.totalNorm).toBe(sync.totalNorm);
      expect(out.norms).toEqual(sync.norms);
      for (const k of Object.keys(grads)) expect(Array.from(out.grads[k]!.dataSync())).toEqual(Array.from(sync.grads[k]!.dataSync()));
      tf.dispose([...Object.values(sync.grads), ...Object.values(out.grads)]);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(await clipGradNormAsync({}, 1)).toEqual({ grads: {}, totalNorm: 0, norms: {} });
    await expect(clipGradNormAsync(grads, 0)).rejects.toThrow(/maxNorm must be > 0, got 0/);
    tf.dispose(Object.values(grads));
  });
});

describe('flamingoParamGroups', () => {
  it('gates at 10× the lr without decay, then no_decay, then decay; options and errors', () => {
    const v = (shape: number[], name: string) => ({ name, variable: tf.variable(tf.zeros(shape), true, `fpg_${name}_${Math.random()}`) });
    const params = [
      v([1], 'lang_encoder.gated_cross_attn_layers.0.attn_gate'),
      v([1], 'lang_encoder.gated_cross_attn_layers.0.ff_gate'),
      v([4, 4], 'lang_encoder.gated_cross_attn_layers.0.attn.to_q.weight'),
      v([4], 'lang_encoder.gated_cross_attn_layers.0.attn.norm.weight'),
      v([2, 4], 'perceiver.latents'),
    ];
    const groups = flamingoParamGroups(params, { lr: 1e-3 });
    expect(groups.map((g) => [g.name, g.lr, g.weightDecay, g.params.map((p) => p.name.split('.').at(-1))])).toEqual([
      ['gates', 1e-3 * 10, 0, ['attn_gate', 'ff_gate']],
      ['no_decay', undefined, 0, ['weight']],
      ['decay', undefined, 0.01, ['weight', 'latents']],
    ]);
    const custom = flamingoParamGroups(params, { lr: 2e-4, weightDecay: 0.1, gateLrMultiplier: 5 });
    expect(custom.map((g) => [g.name, g.lr, g.weightDecay])).toEqual([['gates', 2e-4 * 5, 0], ['no_decay', undefined, 0], ['decay', undefined, 0.1]]);
    expect(FLAMINGO_GATE_PATTERN.test('gated_cross_attn_layers.3.ff_gate')).toBe(true);
    expect(FLAMINGO_GATE_PATTERN.test('my_attn_gate_proj')).toBe(false);
    expect(() => flamingoParamGroups(params, { lr: 0 })).toThrow(/expected lr > 0, got 0/);
    expect(() => flamingoParamGroups(params, { lr: 1, gateLrMultiplier: -1 })).toThrow(/gateLrMultiplier > 0/);
    tf.dispose(params.map((p) => p.variable));
  });
});

describe('DataOrder and tensorDataset', () => {
  it('a seeded permutation per epoch, the same on every call', () => {
    const order = new DataOrder({ size: 10, seed: 5 });
    const e0 = order.epoch(0);
    expect([...e0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(order.epoch(0)).toEqual(e0);
    expect(order.epoch(1)).not.toEqual(e0);
    expect(new DataOrder({ size: 10, seed: 6 }).epoch(0)).not.toEqual(e0);
    expect(new DataOrder({ size: 4, shuffle: false }).epoch(3)).toEqual([0, 1, 2, 3]);
  });

  it('tensorDataset gathers rows and checks its inputs', () => {
    const x = tf.tensor2d([[1], [2], [3]]);
    const y = tf.tensor1d([10, 20, 30]);
    const ds = tensorDataset({ x, y });
    const b = ds.batch([2, 0]);
    expect(Array.from(b.x.dataSync())).toEqual([3, 1]);
    expect(Array.from(b.y.dataSync())).toEqual([30, 10]);
    expect(() => ds.batch([3])).toThrow(/out of range/);
    expect(() => tensorDataset({ x, z: tf.zeros([2]) })).toThrow(/same first/);
    tf.dispose([x, y, b.x, b.y]);
  });
});

describe('Trainer', () => {
  it('visits every example once per epoch in the seeded order', async () => {
    const seen: number[][] = [];
    const w = tf.variable(tf.zeros([1]), true, 'order_w');
    const data = { size: 7, batch: (idx: number[]) => (seen.push(idx), tf.tensor1d(idx)) };
    const t = new Trainer({ optimizer: new SGD(namedParameters([w]), { lr: 0.1 }), data, batchSize: 3, steps: 6, seed: 9, loss: (b: tf.Tensor) => tf.sum(tf.mul(b, w)) as tf.Scalar });
    await t.fit();
    const order = new DataOrder({ size: 7, seed: 9 });
    expect(seen.slice(0, 3).flat()).toEqual(order.epoch(0));
    expect(seen.slice(3, 6).flat()).toEqual(order.epoch(1));
    expect(t.position).toEqual({ epoch: 2, batchInEpoch: 0 });
    w.dispose();
  });

  it('rejects bad options and a checkpoint of another setup, changing nothing', async () => {
    const { data, dispose } = tinyData();
    const net = new TinyNet();
    const opt = () => new AdamW(namedParameters(net));
    expect(() => new Trainer({ optimizer: opt(), data, batchSize: 0, steps: 1, loss: mse(net) })).toThrow(/batchSize must be an integer >= 1/);
    expect(() => new Trainer({ optimizer: opt(), data, batchSize: 2, steps: 1 } as never)).toThrow(/exactly one of `loss`/);
    const a = new Trainer({ optimizer: opt(), data, batchSize: 2, steps: 2, loss: mse(net) });
    await a.fit();
    const c = a.checkpoint();
    const b = new Trainer({ optimizer: opt(), data, batchSize: 4, steps: 4, loss: mse(net) });
    await expect(b.restore(c)).rejects.toThrow(/data.batchSize is 2 in the checkpoint, 4 here/);
    expect(b.step).toBe(0);
    const other = new TinyNet(1);
    const d = new Trainer({ optimizer: new AdamW(namedParameters({ x: other })), data, batchSize: 2, steps: 4, loss: mse(other) });
    await expect(d.restore(c)).rejects.toThrow(/weight 'x.gate' is missing/);
    for (const t of [a, b, d]) t.dispose();
    net.dispose();
    other.dispose();
    dispose();
  });

  it('AdamW optimizer state round-trips through state()/loadState()', async () => {
    const { data, dispose } = tinyData();
    const net = new TinyNet();
    const t = new Trainer({ optimizer: new AdamW(namedParameters(net)), data, batchSize: 5, steps: 3, loss: mse(net) });
    await t.fit();
    const s = t.optimizer.state();
    expect(Object.keys(s.tensors)).toContain('fc1.weight.exp_avg_sq');
    expect(s.tensors['fc1.weight.exp_avg']!.shape).toEqual([8, 6]); // PyTorch layout
    expect(s.info.steps['fc1.weight']).toBe(3);
    const o2 = new AdamW(namedParameters(net));
    o2.loadState(s);
    const s2 = o2.state();
    for (const k of Object.keys(s.tensors)) expect(Array.from(s2.tensors[k]!.dataSync())).toEqual(Array.from(s.tensors[k]!.dataSync()));
    expect(() => new SGD(namedParameters(net), { lr: 1 }).loadState(s)).toThrow(/optimizer kind AdamW, expected SGD/);
    // a bad gradient anywhere: an Error before any parameter changes
    const bits = net.parameters().map((v) => Array.from(v.dataSync()));
    const grads: tf.NamedTensorMap = Object.fromEntries(net.parameters().map((v) => [v.name, tf.onesLike(v) as tf.Tensor]));
    const fc2 = net.fc2.namedParameters()[0]![1];
    grads[fc2.name]!.dispose();
    grads[fc2.name] = tf.ones([2, 2]);
    expect(() => o2.step(grads)).toThrow(/gradient of 'fc2.weight' has shape \[2,2\], expected \[8,3\]/);
    expect(net.parameters().map((v) => Array.from(v.dataSync()))).toEqual(bits);
    tf.dispose(Object.values(grads));
    tf.dispose([...Object.values(s.tensors), ...Object.values(s2.tensors)]);
    o2.dispose();
    t.dispose();
    net.dispose();
    dispose();
  });
});

describe('gradient sources', () => {
  it('microBatchGradients (3 rows at a time) equals variableGradients on the whole batch', async () => {
    const { x, y, dispose } = tinyData();
    const net = new TinyNet(6);
    const vars = net.parameters();
    const sumLoss = ([xb, yb]: tf.Tensor[]) => tf.div(tf.sum(tf.square(tf.sub(net.forward(xb!), yb!))), 20) as tf.Scalar;
    const whole = await variableGradients(sumLoss)([x, y], vars);
    const parts = await microBatchGradients(sumLoss, 3)([x, y], vars);
    expect(parts.value.dataSync()[0]).toBeCloseTo(whole.value.dataSync()[0]!, 5);
    for (const v of vars) {
      const [a, b] = [whole.grads[v.name]!.dataSync(), parts.grads[v.name]!.dataSync()];
      a.forEach((g, i) => expect(Math.abs(g - b[i]!)).toBeLessThan(1e-6 + 1e-5 * Math.abs(g)));
    }
    tf.dispose([whole.value, parts.value, ...Object.values(whole.grads), ...Object.values(parts.grads)]);
    net.dispose();
    dispose();
  });
});
