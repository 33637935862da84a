import * as tf from '@tensorflow/tfjs-core';
import { beforeEach, describe, expect, test } from 'vitest';
import { FeedForward, LayerNorm, Linear, Module, ModuleList, MultiHeadAttention } from '@vlm/core';

class Block extends Module {
  readonly crossAttn = this.registerModule('cross_attn', new MultiHeadAttention({ embedDim: 8, numHeads: 2 }));
  readonly norm = this.registerModule('norm', new LayerNorm({ dim: 8 }));
  readonly ffn = this.registerModule('ffn', new FeedForward({ dim: 8, mult: 2 }));
}

class Tiny extends Module {
  readonly layers: ModuleList<Block>;
  constructor() {
    super();
    this.registerParameter('queries', tf.zeros([1, 3, 8]));
    this.layers = this.registerModule('layers', new ModuleList([new Block(), new Block()]));
  }
}

let before = 0;
beforeEach(() => {
  before = tf.memory().numTensors;
});

describe('Module', () => {
  test('names every nested weight like PyTorch state_dict, in its order', () => {
    const m = new Tiny();
    const shapes = m.stateDictShapes();
    expect(Object.keys(shapes)).toEqual([
      'queries',
      ...[0, 1].flatMap((i) => [
        `layers.${i}.cross_attn.in_proj_weight`,
        `layers.${i}.cross_attn.in_proj_bias`,
        `layers.${i}.cross_attn.out_proj.weight`,
        `layers.${i}.cross_attn.out_proj.bias`,
        `layers.${i}.norm.weight`,
        `layers.${i}.norm.bias`,
        `layers.${i}.ffn.0.weight`,
        `layers.${i}.ffn.0.bias`,
        `layers.${i}.ffn.2.weight`,
        `layers.${i}.ffn.2.bias`,
      ]),
    ]);
    expect(shapes['layers.1.cross_attn.in_proj_weight']).toEqual([24, 8]);
    expect(shapes['layers.0.ffn.0.weight']).toEqual([16, 8]); // [out, in]
    expect(new Set(m.parameters().map((v) => v.name)).size).toBe(m.parameters().length);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('stateDict uses PyTorch layout and round-trips exactly', () => {
    const fc = new Linear({ inFeatures: 3, outFeatures: 2 });
    const w = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const b = tf.tensor1d([0.5, -0.5]);
    fc.loadStateDict({ weight: w, bias: b });
    expect(fc.kernel.shape).toEqual([3, 2]);
    const x = tf.tensor2d([[1, 0, -1]]);
    const y = fc.forward(x);
    expect(Array.from(y.dataSync())).toEqual([1 - 3 + 0.5, 4 - 6 - 0.5]);
    const sd = fc.stateDict();
    expect(sd.weight!.arraySync()).toEqual([[1, 2, 3], [4, 5, 6]]);
    const other = new Linear({ inFeatures: 3, outFeatures: 2 });
    other.loadStateDict(sd);
    expect(other.kernel.arraySync()).toEqual(fc.kernel.arraySync());
    tf.dispose([w, b, x, y, ...Object.values(sd)]);
    fc.dispose();
    other.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('strict loadStateDict names all missing, unexpected and mismatched keys in one error and loads nothing', () => {
    const m = new Tiny();
    const sd = m.stateDict();
    const original = m.stateDict();
    const extra = tf.zeros([2]);
    const wrong = tf.zeros([8, 24]);
    const dict = { ...sd, 'layers.9.bogus': extra, 'layers.1.cross_attn.in_proj_weight': wrong };
    delete dict['queries'];
    delete dict['layers.0.norm.bias'];
    let message = '';
    try {
      m.loadStateDict(dict);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/Missing key\(s\) in state_dict:\n {2}queries\n {2}layers\.0\.norm\.bias/);
    expect(message).toMatch(/Unexpected key\(s\) in state_dict:\n {2}layers\.9\.bogus/);
    expect(message).toMatch(/layers\.1\.cross_attn\.in_proj_weight: expected shape \[24, 8\], got \[8, 24\]/);
    // nothing was loaded
    const now = m.stateDict();
    for (const k of Object.keys(original)) expect(now[k]!.arraySync()).toEqual(original[k]!.arraySync());
    // non-strict: reports, loads the rest, still refuses shape mismatches
    const loose = { ...sd, 'layers.9.bogus': extra };
    delete loose['queries'];
    const res = m.loadStateDict(loose, { strict: false });
    expect(res).toEqual({ missingKeys: ['queries'], unexpectedKeys: ['layers.9.bogus'] });
    expect(() => m.loadStateDict({ 'layers.1.cross_attn.in_proj_weight': wrong }, { strict: false })).toThrow(/expected shape \[24, 8\]/);
    expect(() => m.loadStateDict({ ...sd, queries: tf.zeros([1, 3, 8], 'int32') })).toThrow(/queries: expected dtype float32, got int32/);
    tf.dispose([...Object.values(sd), ...Object.values(original), ...Object.values(now), extra, wrong]);
    m.dispose();
  });

  test('loadStateDict checks every entry (live tf.Tensor, shape, dtype) before the first write', () => {
    const m = new Tiny();
    const original = m.stateDict();
    const disposed = tf.ones([1, 3, 8]);
    disposed.dispose();
    const cases: Array<[string, unknown, RegExp]> = [
      ['a disposed tensor', disposed, /queries: expected a live tf\.Tensor, got a disposed tensor of shape \[1, 3, 8\]/],
      ['a tensor-like object', { shape: [1, 3, 8], dtype: 'float32', dataSync: () => new Float32Array(24) }, /queries: expected a live tf\.Tensor, got an object that is not a tf\.Tensor \(keys: shape, dtype, dataSync\)/],
      ['null', null, /queries: expected a live tf\.Tensor, got null/],
      ['an array', [[0]], /queries: expected a live tf\.Tensor, got an array of length 1/],
    ];
    for (const [, bad, message] of cases) {
      // 'queries' is last in the dict: a check at write time would have overwritten the others first
      const dict: Record<string, unknown> = { ...Object.fromEntries(Object.entries(original).map(([k]) => [k, tf.onesLike(original[k]!)])) };
      delete dict['queries'];
      dict['queries'] = bad;
      expect(() => m.loadStateDict(dict as never)).toThrow(message);
      expect(() => m.loadStateDict(dict as never, { strict: false })).toThrow(message);
      const now = m.stateDict();
      for (const k of Object.keys(original)) expect(now[k]!.arraySync()).toEqual(original[k]!.arraySync());
      tf.dispose([...Object.values(now), ...(Object.values(dict).filter((v) => v instanceof tf.Tensor && v !== disposed) as tf.Tensor[])]);
    }
    expect(() => m.loadStateDict(null as never)).toThrow('loadStateDict for Tiny: expected a state dict (an object of tensors by name), got null');
    expect(() => m.loadStateDict(original['queries'] as never)).toThrow('got a tensor of shape [1, 3, 8]');
    // the module still works
    const y = m.stateDict();
    expect(y['queries']!.shape).toEqual([1, 3, 8]);
    tf.dispose([...Object.values(original), ...Object.values(y)]);
    m.dispose();
  });

  test('rejects duplicate and invalid names', () => {
    class Bad extends Module {
      constructor(name: string) {
        super();
        this.registerParameter('w', tf.zeros([1]));
        this.registerParameter(name, tf.zeros([1]));
      }
    }
    expect(() => new Bad('w')).toThrow(/already has a parameter or child named 'w'/);
    expect(() => new Bad('a.b')).toThrow(/Invalid name 'a\.b'/);
  });
});
