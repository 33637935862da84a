import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test, vi } from 'vitest';
import {
  Embedding,
  FeedForward,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  appendKV,
  decoderContext,
  disposeKVCache,
  generateGreedy,
  generateGreedyAsync,
  withoutReadbackChecks,
  linear,
  runDecoder,
  scaledDotProductAttention,
  type DecoderForwardArgs,
  type DecoderLM,
  type DecoderLayerContext,
  type DecoderLayerOutput,
  type DecoderOutput,
  type LayerKV,
} from '@vlm/core';

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

// A small GPT-2-style decoder made of @vlm/core pieces: learned positions, pre-LN blocks, KV cache, tied head.
class Block extends Module {
  readonly ln1 = this.registerModule('ln_1', new LayerNorm({ dim: 16 }));
  readonly qkv = this.registerModule('c_attn', new Linear({ inFeatures: 16, outFeatures: 48 }));
  readonly proj = this.registerModule('c_proj', new Linear({ inFeatures: 16, outFeatures: 16 }));
  readonly ln2 = this.registerModule('ln_2', new LayerNorm({ dim: 16 }));
  readonly mlp = this.registerModule('mlp', new FeedForward({ dim: 16 }));
  forward(x: tf.Tensor, ctx: DecoderLayerContext, past?: LayerKV): DecoderLayerOutput {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(this.qkv.forward(this.ln1.forward(x)), 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
      const present = appendKV(past, k, v, 1);
      const h = tf.add(x, this.proj.forward(scaledDotProductAttention(q, present.key, present.value, { heads: 2, allowed: ctx.allowed })));
      return { hidden: tf.add(h, this.mlp.forward(this.ln2.forward(h))), present } as unknown as tf.TensorContainer;
    }) as unknown as DecoderLayerOutput;
  }
}

class TinyLM extends Module implements DecoderLM {
  readonly numLayers = 2;
  readonly hiddenSize = 16;
  readonly vocabSize = 23;
  readonly wte = this.registerModule('wte', new Embedding({ numEmbeddings: 23, embeddingDim: 16 }));
  readonly wpe = this.registerModule('wpe', new Embedding({ numEmbeddings: 32, embeddingDim: 16 }));
  readonly h = this.registerModule('h', new ModuleList([new Block(), new Block()]));
  readonly lnF = this.registerModule('ln_f', new LayerNorm({ dim: 16 }));
  embedTokens(ids: tf.Tensor) {
    return this.wte.forward(ids);
  }
  embedInputs(e: tf.Tensor, ctx: DecoderLayerContext) {
    return tf.tidy(() => tf.add(e, this.wpe.forward(ctx.positionIds)));
  }
  forwardLayer(i: number, hidden: tf.Tensor, ctx: DecoderLayerContext, past?: LayerKV) {
    return this.h.get(i).forward(hidden, ctx, past);
  }
  finalNorm(hidden: tf.Tensor) {
    return this.lnF.forward(hidden);
  }
  lmHead(hidden: tf.Tensor) {
    return tf.tidy(() => linear(hidden, tf.transpose(this.wte.weight), null));
  }
  forward(args: DecoderForwardArgs): DecoderOutput {
    return runDecoder(this, args);
  }
}

const disposeOut = (o: DecoderOutput) => {
  tf.dispose([o.logits, o.lastHiddenState, ...(o.hiddenStates ?? [])]);
  disposeKVCache(o.pastKeyValues);
};

describe('decoderContext', () => {
  test('causal ∧ key padding mask, and positions counted over real tokens (left padding)', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const mask = tf.tensor2d([[0, 0, 1, 1], [1, 1, 1, 1]], undefined, 'int32');
      const ctx = decoderContext({ batch: 2, queries: 4, attentionMask: mask });
      expect(ctx.allowed.shape).toEqual([2, 1, 4, 4]);
      expect(ctx.allowed.arraySync()[0]![0]).toEqual([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]);
      expect(ctx.allowed.arraySync()[1]![0]).toEqual([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]);
      expect(ctx.positionIds.arraySync()).toEqual([[0, 0, 0, 1], [0, 1, 2, 3]]);
      expect(ctx.positionIds.dtype).toBe('int32');
      // one new token after 4 cached ones
      const grown = tf.tensor2d([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], undefined, 'int32');
      const step = decoderContext({ batch: 2, queries: 1, pastLength: 4, attentionMask: grown });
      expect(step.allowed.arraySync()).toEqual([[[[0, 0, 1, 1, 1]]], [[[1, 1, 1, 1, 1]]]]);
      expect(step.positionIds.arraySync()).toEqual([[2], [4]]);
      // no mask: past + 0, 1, ...
      const plain = decoderContext({ batch: 1, queries: 2, pastLength: 3 });
      expect(plain.positionIds.arraySync()).toEqual([[3, 4]]);
      expect(plain.allowed.arraySync()).toEqual([[[[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]]]);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('masks and positions of the wrong shape are errors naming both shapes', () => {
    const m = tf.ones([2, 3]);
    const p = tf.zeros([2, 3], 'int32');
    expect(() => decoderContext({ batch: 2, queries: 4, attentionMask: m })).toThrow(/attentionMask: expected shape \[batch=2, pastLength\+queries=4\], got \[2, 3\]/);
    expect(() => decoderContext({ batch: 2, queries: 4, positionIds: p })).toThrow(/positionIds: expected shape \[batch=2, queries=4\], got \[2, 3\]/);
    tf.dispose([m, p]);
  });
});

describe('runDecoder / DecoderLM', () => {
  const ids = () => tf.tensor2d([[1, 5, 7, 2, 9, 4], [3, 3, 8, 1, 6, 2]], undefined, 'int32');

  test('a cached step-by-step pass equals one full pass; inputsEmbeds equals inputIds', () => {
    const lm = new TinyLM();
    const x = ids();
    const before = tf.memory().numTensors;
    const full = lm.forward({ inputIds: x, outputHiddenStates: true });
    expect(full.logits.shape).toEqual([2, 6, 23]);
    expect(full.hiddenStates!.length).toBe(3);
    const [head, rest] = tf.split(x, [4, 2], 1);
    const first = lm.forward({ inputIds: head!, useCache: true });
    expect(first.pastKeyValues!.length).toBe(4);
    const second = lm.forward({ inputIds: rest!, pastKeyValues: first.pastKeyValues, useCache: true });
    expect(second.pastKeyValues!.length).toBe(6);
    expect(second.pastKeyValues!.layers[1]!.key.shape).toEqual([2, 6, 16]);
    const tail = tf.slice(full.logits, [0, 4, 0], [2, 2, 23]);
    expect(maxDiff(tail, second.logits)).toBeLessThan(1e-5);
    const embeds = lm.embedTokens(x);
    const viaEmbeds = lm.forward({ inputsEmbeds: embeds });
    expect(maxDiff(viaEmbeds.logits, full.logits)).toBe(0);
    [full, first, second, viaEmbeds].forEach(disposeOut);
    tf.dispose([tail, embeds, head!, rest!]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    lm.dispose();
  });

  test('a left-padded row gives the logits it gets alone', () => {
    const lm = new TinyLM();
    const padded = tf.tensor2d([[0, 0, 5, 7, 2], [4, 5, 7, 2, 9]], undefined, 'int32');
    const mask = tf.tensor2d([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], undefined, 'int32');
    const alone = tf.tensor2d([[5, 7, 2]], undefined, 'int32');
    const a = lm.forward({ inputIds: padded, attentionMask: mask });
    const b = lm.forward({ inputIds: alone });
    const row = tf.slice(a.logits, [0, 2, 0], [1, 3, 23]);
    expect(maxDiff(row, b.logits)).toBeLessThan(1e-5);
    [a, b].forEach(disposeOut);
    tf.dispose([padded, mask, alone, row]);
    lm.dispose();
  });

  test('beforeLayer runs before each layer, in order, and can change the hidden states', () => {
    const lm = new TinyLM();
    const x = ids();
    const seen: number[] = [];
    const plain = lm.forward({ inputIds: x });
    const same = runDecoder(lm, { inputIds: x }, { beforeLayer: (i, h) => (seen.push(i), h) });
    expect(seen).toEqual([0, 1]);
    expect(maxDiff(plain.logits, same.logits)).toBe(0);
    const shifted = runDecoder(lm, { inputIds: x }, { beforeLayer: (i, h) => (i === 1 ? tf.mul(h, tf.linspace(0.5, 2, 16)) : h) });
    expect(maxDiff(plain.logits, shifted.logits)).toBeGreaterThan(1e-3);
    [plain, same, shifted].forEach(disposeOut);
    x.dispose();
    lm.dispose();
  });

  test('bad inputs are errors naming the shapes', () => {
    const lm = new TinyLM();
    const x = ids();
    const e = tf.zeros([2, 6, 8]);
    expect(() => lm.forward({})).toThrow(/exactly one of inputIds \[batch, queries\] and inputsEmbeds/);
    expect(() => lm.forward({ inputsEmbeds: e })).toThrow(/inputsEmbeds: expected shape \[batch, queries, embedDim=16\], got \[2, 6, 8\]/);
    expect(() => lm.forward({ inputIds: x, pastKeyValues: { layers: [], length: 3 } })).toThrow(/expected 2 layer entries, got 0/);
    tf.dispose([x, e]);
    lm.dispose();
  });

  test('greedy generation: cached equals uncached, eos ends a row, nothing leaks', () => {
    const lm = new TinyLM();
    const prompt = tf.tensor2d([[0, 5, 7], [4, 5, 7]], undefined, 'int32');
    const mask = tf.tensor2d([[0, 1, 1], [1, 1, 1]], undefined, 'int32');
    const before = tf.memory().numTensors;
    const a = generateGreedy((args) => lm.forward(args), { inputIds: prompt, attentionMask: mask, maxNewTokens: 5 });
    const b = generateGreedy((args) => lm.forward(args), { inputIds: prompt, attentionMask: mask, maxNewTokens: 5, useCache: false });
    expect(a.sequences.shape).toEqual([2, 8]);
    expect(a.stepLogits.shape).toEqual([2, 5, 23]);
    expect(a.sequences.arraySync()).toEqual(b.sequences.arraySync());
    expect(maxDiff(a.stepLogits, b.stepLogits)).toBeLessThan(1e-4);
    // stop at the first generated token of row 0: row 0 is then padded with 0, and generation goes on for row 1
    const eos = (a.sequences.arraySync() as number[][])[0]![3]!;
    const c = generateGreedy((args) => lm.forward(args), { inputIds: prompt, attentionMask: mask, maxNewTokens: 5, eosTokenId: eos, padTokenId: 0 });
    const rows = c.sequences.arraySync() as number[][];
    expect(rows[0]!.slice(3)).toEqual([eos, ...Array(rows[0]!.length - 4).fill(0)]);
    tf.dispose([a.sequences, a.stepLogits, b.sequences, b.stepLogits, c.sequences, c.stepLogits]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([prompt, mask]);
    lm.dispose();
  });

  test('generateGreedyAsync: the tokens and logits of generateGreedy, no synchronous read, host ids to the forward, nothing leaks', async () => {
    const lm = new TinyLM();
    const prompt = tf.tensor2d([[0, 5, 7], [4, 5, 7]], undefined, 'int32');
    const mask = tf.tensor2d([[0, 1, 1], [1, 1, 1]], undefined, 'int32');
    const before = tf.memory().numTensors;
    for (const useCache of [true, false]) {
      const sync = generateGreedy((args) => lm.forward(args), { inputIds: prompt, attentionMask: mask, maxNewTokens: 5, useCache });
      const rows = sync.sequences.arraySync() as number[][];
      const seen: number[][][] = [];
      const reads = vi.spyOn(tf.engine(), 'readSync');
      const out = await generateGreedyAsync(
        (args, ids) => {
          seen.push(ids);
          return withoutReadbackChecks(() => lm.forward(args));
        },
        { inputIds: prompt, attentionMask: mask, maxNewTokens: 5, useCache },
      );
      expect(reads.mock.calls.length).toBe(0);
      reads.mockRestore();
      expect(await out.sequences.array()).toEqual(rows);
      expect(maxDiff(out.stepLogits, sync.stepLogits)).toBe(0);
      // the forward's host ids are the columns it is given: the prompt, then (cached) each row's last token
      expect(seen[0]).toEqual([[0, 5, 7], [4, 5, 7]]);
      expect(seen[2]).toEqual(useCache ? rows.map((r) => [r[4]]) : rows.map((r) => r.slice(0, 5)));
      tf.dispose([sync.sequences, sync.stepLogits, out.sequences, out.stepLogits]);
    }
    // eos ends a row as in generateGreedy
    const a = generateGreedy((args) => lm.forward(args), { inputIds: prompt, attentionMask: mask, maxNewTokens: 5 });
    const eos = (a.sequences.arraySync() as number[][])[0]![3]!;
    const c = generateGreedy((args) => lm.forward(args), { inputIds: prompt, attentionMask: mask, maxNewTokens: 5, eosTokenId: eos, padTokenId: 0 });
    const d = await generateGreedyAsync((args) => lm.forward(args), { inputIds: prompt, attentionMask: mask, maxNewTokens: 5, eosTokenId: eos, padTokenId: 0 });
    expect(await d.sequences.array()).toEqual(c.sequences.arraySync());
    // a forward that throws leaks nothing
    await expect(generateGreedyAsync(() => { throw new Error('no forward'); }, { inputIds: prompt, maxNewTokens: 2 })).rejects.toThrow('no forward');
    await expect(generateGreedyAsync((args) => lm.forward(args), { inputIds: prompt, maxNewTokens: -1 })).rejects.toThrow(/maxNewTokens to be an integer >= 0/);
    tf.dispose([a.sequences, a.stepLogits, c.sequences, c.stepLogits, d.sequences, d.stepLogits]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([prompt, mask]);
    lm.dispose();
  });

  test('appendKV concatenates along the positions axis', () => {
    tf.tidy(() => {
      const first = appendKV(undefined, tf.ones([1, 2, 4]), tf.zeros([1, 2, 4]));
      const next = appendKV(first, tf.ones([1, 1, 4]), tf.ones([1, 1, 4]));
      expect(next.key.shape).toEqual([1, 3, 4]);
      expect(() => appendKV(first, tf.ones([1, 1, 1, 4]), tf.ones([1, 1, 4]))).toThrow(/differ in rank/);
    });
  });
});
