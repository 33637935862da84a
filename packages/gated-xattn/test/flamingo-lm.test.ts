import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test, vi } from 'vitest';
import { countParameters, disposeKVCache, manualSeed, trainableVariables } from '@vlm/core';
import {
  FlamingoLM,
  checkMediaCount,
  crossAttentionLayerIndices,
  decoderLMStateDictFromOpenFlamingo,
  flamingoLMStateDictFromOpenFlamingo,
  insertGatedCrossAttention,
} from '@vlm/gated-xattn';
import { TinyDecoder } from './tiny-decoder';

const IMAGE = 49;
const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

function setup(n = 1, onlyAttendImmediateMedia = true) {
  // seeded weights: an unseeded LM may greedily generate <image> (id 49 of 50), which has no image to
  // go with it and is an error at this level (the pipelines suppress it); the tests must not depend on luck
  manualSeed(7);
  const lm = new TinyDecoder({ vocabSize: 50, hiddenSize: 32, numLayers: 4, numHeads: 4, maxPositions: 64 });
  const flamingo = new FlamingoLM({ lm, dimVisual: 24, crossAttnEveryNLayers: n, dimHead: 8, heads: 4, mediaTokenId: IMAGE, onlyAttendImmediateMedia });
  manualSeed(null);
  // row 0: <image> at 1 and 5; row 1: left-padded by 2, text before its first <image> at 4
  const ids = tf.tensor2d([[5, IMAGE, 7, 8, 9, IMAGE, 10, 11], [0, 0, 3, 4, IMAGE, 6, 7, 8]], undefined, 'int32');
  const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1, 1]], undefined, 'int32');
  const media = tf.randomNormal([2, 2, 6, 24], 0, 1, 'float32', 3);
  const dispose = () => {
    flamingo.dispose();
    lm.dispose();
    tf.dispose([ids, mask, media]);
  };
  return { lm, flamingo, ids, mask, media, dispose };
}

function setGates(flamingo: FlamingoLM, attn: number, ff: number) {
  for (const block of flamingo.blocks.values()) {
    block.attnGate.assign(tf.tensor1d([attn]));
    block.ffGate.assign(tf.tensor1d([ff]));
  }
}

describe('FlamingoLM', () => {
  test('blocks sit before decoder layer i when (i + 1) % N == 0, under gated_cross_attn_layers.{i}', () => {
    expect(crossAttentionLayerIndices(4, 1)).toEqual([0, 1, 2, 3]);
    expect(crossAttentionLayerIndices(4, 2)).toEqual([1, 3]);
    expect(crossAttentionLayerIndices(3, 2)).toEqual([1]);
    expect(() => crossAttentionLayerIndices(4, 0)).toThrow(/positive integer/);
    const s = setup(2);
    expect([...s.flamingo.blocks.keys()]).toEqual([1, 3]);
    const keys = Object.keys(s.flamingo.stateDictShapes());
    expect(keys).toContain('gated_cross_attn_layers.1.attn_gate');
    expect(keys).toContain('gated_cross_attn_layers.3.attn.to_kv.weight');
    expect(keys.every((k) => /^gated_cross_attn_layers\.[13]\./.test(k))).toBe(true);
    // the LM is frozen; the trainable weights are exactly the blocks'
    expect(countParameters(s.lm, { trainableOnly: true })).toBe(0);
    expect(trainableVariables(s.flamingo, s.lm).length).toBe(s.flamingo.parameters().length);
    expect(s.flamingo.gateValues()).toEqual([
      { layer: 1, attn: 0, ff: 0 },
      { layer: 3, attn: 0, ff: 0 },
    ]);
    setGates(s.flamingo, 0.5, -1);
    const g = s.flamingo.gateValues();
    expect(g[0]!.attn).toBeCloseTo(Math.tanh(0.5), 6);
    expect(g[1]!.ff).toBeCloseTo(Math.tanh(-1), 6);
    s.dispose();
  });

  test('with all gates at 0 the logits equal the bare LM bit for bit', () => {
    const s = setup(1);
    const before = tf.memory().numTensors;
    const bare = s.lm.forward({ inputIds: s.ids, attentionMask: s.mask });
    const wrapped = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    expect(bits(wrapped.logits)).toEqual(bits(bare.logits));
    tf.dispose([bare.logits, bare.lastHiddenState, wrapped.logits, wrapped.lastHiddenState]);
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });

  test('with an attention gate the logits change only at and after the first image of each row', () => {
    for (const immediate of [true, false]) {
      const s = setup(2, immediate);
      setGates(s.flamingo, 0.8, 0);
      const bare = s.lm.forward({ inputIds: s.ids, attentionMask: s.mask });
      const wrapped = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
      const firstImage = [1, 4];
      for (let row = 0; row < 2; row++) {
        for (let pos = 0; pos < 8; pos++) {
          if (row === 1 && pos < 2) continue; // padding: implementation-defined
          const slice = (t: tf.Tensor) => tf.slice(t, [row, pos, 0], [1, 1, -1]);
          const [a, b] = [slice(wrapped.logits), slice(bare.logits)];
          if (pos < firstImage[row]!) expect(bits(a)).toEqual(bits(b));
          else expect(maxDiff(a, b)).toBeGreaterThan(1e-4);
          tf.dispose([a, b]);
        }
      }
      tf.dispose([bare.logits, bare.lastHiddenState, wrapped.logits, wrapped.lastHiddenState]);
      s.dispose();
    }
  });

  test('the feed-forward gate acts on every token, as in OpenFlamingo', () => {
    const s = setup(1);
    setGates(s.flamingo, 0, 0.5);
    const bare = s.lm.forward({ inputIds: s.ids, attentionMask: s.mask });
    const wrapped = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    const first = (t: tf.Tensor) => tf.slice(t, [0, 0, 0], [1, 1, -1]);
    const [a, b] = [first(wrapped.logits), first(bare.logits)];
    expect(maxDiff(a, b)).toBeGreaterThan(1e-4);
    tf.dispose([a, b, bare.logits, bare.lastHiddenState, wrapped.logits, wrapped.lastHiddenState]);
    s.dispose();
  });

  test('cached generation equals recomputing the whole sequence; new tokens attend to the last image', () => {
    const s = setup(2);
    setGates(s.flamingo, 0.9, 0.6);
    const before = tf.memory().numTensors;
    const cached = s.flamingo.generate({ inputIds: s.ids, attentionMask: s.mask, media: s.media, maxNewTokens: 5 });
    const full = s.flamingo.generate({ inputIds: s.ids, attentionMask: s.mask, media: s.media, maxNewTokens: 5, useCache: false });
    expect(cached.sequences.shape).toEqual([2, 13]);
    expect(cached.stepLogits.shape).toEqual([2, 5, 50]);
    expect(Array.from(cached.sequences.dataSync())).toEqual(Array.from(full.sequences.dataSync()));
    expect(maxDiff(cached.stepLogits, full.stepLogits)).toBeLessThan(1e-4);

    // one cached step by hand: the cache carries the media and each row's text time (2 and 1 images)
    const step = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media, useCache: true });
    expect(Array.from(step.pastKeyValues!.mediaTime.dataSync())).toEqual([2, 1]);
    expect(step.pastKeyValues!.length).toBe(8);
    tf.dispose([cached.sequences, cached.stepLogits, full.sequences, full.stepLogits, step.logits, step.lastHiddenState]);
    disposeKVCache(step.pastKeyValues);
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });

  test('generateAsync: the tokens and logits of generate with no synchronous read; host checks of ids and images; gateValuesAsync', async () => {
    const s = setup(2);
    setGates(s.flamingo, 0.9, 0.6);
    const before = tf.memory().numTensors;
    for (const useCache of [true, false]) {
      const sync = s.flamingo.generate({ inputIds: s.ids, attentionMask: s.mask, media: s.media, maxNewTokens: 5, useCache });
      const reads = vi.spyOn(tf.engine(), 'readSync');
      const out = await s.flamingo.generateAsync({ inputIds: s.ids, attentionMask: s.mask, media: s.media, maxNewTokens: 5, useCache });
      expect(reads.mock.calls.length).toBe(0);
      reads.mockRestore();
      expect(await out.sequences.array()).toEqual(sync.sequences.arraySync());
      expect(maxDiff(out.stepLogits, sync.stepLogits)).toBe(0);
      tf.dispose([sync.sequences, sync.stepLogits, out.sequences, out.stepLogits]);
    }
    // the checks the forward makes after a read-back, made on the host instead
    const one = tf.slice(s.media, [0, 0, 0, 0], [2, 1, 6, 24]);
    await expect(s.flamingo.generateAsync({ inputIds: s.ids, attentionMask: s.mask, media: one, maxNewTokens: 2 })).rejects.toThrow(/names 2 image\(s\) in row 0.*media has shape \[2, 1, 6, 24\]/);
    const outOfVocab = tf.tensor2d([[5, IMAGE, 50]], undefined, 'int32');
    await expect(s.flamingo.generateAsync({ inputIds: outOfVocab, media: tf.slice(one, [0], [1]), maxNewTokens: 2 })).rejects.toThrow(/FlamingoLM.generateAsync inputIds must be in \[0, 50\), got values in \[5, 50\]/);
    tf.dispose([one, outOfVocab]);
    expect(tf.memory().numTensors).toBe(before + 1); // the slice inside the rejected call's arguments
    const beforeGates = tf.memory().numTensors;
    const reads = vi.spyOn(tf.engine(), 'readSync');
    const gates = await s.flamingo.gateValuesAsync();
    const block = await s.flamingo.blocks.get(1)!.gateValuesAsync();
    expect(reads.mock.calls.length).toBe(0);
    reads.mockRestore();
    expect(tf.memory().numTensors).toBe(beforeGates);
    expect(gates).toEqual(s.flamingo.gateValues());
    expect(block).toEqual(s.flamingo.blocks.get(1)!.gateValues());
    expect(gates.map((g) => g.layer)).toEqual([1, 3]);
    expect(gates[0]!.attn).toBeCloseTo(Math.tanh(0.9), 6);
    s.dispose();
  });

  test('a left-padded row gives the logits it gets alone, unpadded', () => {
    const s = setup(1);
    setGates(s.flamingo, 0.7, 0.4);
    const batch = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    const ids1 = tf.tensor2d([[3, 4, IMAGE, 6, 7, 8]], undefined, 'int32');
    const media1 = tf.slice(s.media, [1, 0, 0, 0], [1, -1, -1, -1]);
    const alone = s.flamingo.forward({ inputIds: ids1, media: media1 });
    const fromBatch = tf.slice(batch.logits, [1, 2, 0], [1, 6, -1]);
    expect(maxDiff(fromBatch, alone.logits)).toBeLessThan(1e-5);
    tf.dispose([batch.logits, batch.lastHiddenState, alone.logits, alone.lastHiddenState, ids1, media1, fromBatch]);
    s.dispose();
  });

  test('gradients reach every block weight, and nothing leaks', () => {
    const s = setup(2);
    setGates(s.flamingo, 0.3, 0.2);
    const before = tf.memory().numTensors;
    const vars = trainableVariables(s.flamingo, s.lm);
    const { value, grads } = tf.variableGrads(() => {
      const out = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
      return tf.mean(tf.square(out.logits)) as tf.Scalar;
    }, vars);
    expect(Object.keys(grads).length).toBe(vars.length);
    for (const v of vars) expect(tf.tidy(() => tf.max(tf.abs(grads[v.name]!)).dataSync()[0]!)).toBeGreaterThan(0);
    value.dispose();
    tf.dispose(Object.values(grads));
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });

  test('gateContributions: each block\'s gated updates against the hidden states they are added to; forward unchanged', () => {
    const s = setup(2);
    setGates(s.flamingo, 0, 0);
    const before = tf.memory().numTensors;
    // gates at 0: no update anywhere
    const zero = s.flamingo.gateContributions({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    expect(zero.map((c) => c.layer)).toEqual([1, 3]);
    for (const c of zero) {
      expect(c.attn.shape).toEqual([2, 8]);
      expect(Math.max(...c.attn.dataSync())).toBe(0);
      expect(Math.max(...c.ff.dataSync())).toBe(0);
    }
    tf.dispose(zero.flatMap((c) => [c.attn, c.ff]));
    expect(tf.memory().numTensors).toBe(before);
    const badMedia = tf.zeros([2, 2, 6, 23]);
    expect(() => s.flamingo.gateContributions({ inputIds: s.ids, media: badMedia })).toThrow(/FlamingoLM media: expected shape \[batch, T, m, dimVisual=24\], got \[2, 2, 6, 23\]/);
    badMedia.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.tidy(() => setGates(s.flamingo, 0.7, -0.4));
    const first = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    // the same ratios by hand: run the decoder with each block replaced by its parts
    const byHand = new Map<number, { attn: number[]; ff: number[] }>();
    for (const [layer, block] of s.flamingo.blocks) {
      const original = block.forwardWithOptions.bind(block);
      block.forwardWithOptions = (x, media, options) =>
        tf.tidy(() => {
          const a = tf.mul(block.attn.forwardWithOptions(x, media, options), tf.tanh(block.attnGate));
          const h = tf.add(x, a);
          const f = tf.mul(block.ff.forward(h), tf.tanh(block.ffGate));
          const norm = (t: tf.Tensor) => tf.sqrt(tf.sum(tf.square(t), -1));
          byHand.set(layer, { attn: Array.from(tf.div(norm(a), norm(x)).dataSync()), ff: Array.from(tf.div(norm(f), norm(h)).dataSync()) });
          return original(x, media, options);
        });
    }
    tf.dispose(s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media }) as unknown as tf.TensorContainer);
    for (const block of s.flamingo.blocks.values()) delete (block as { forwardWithOptions?: unknown }).forwardWithOptions;
    const got = s.flamingo.gateContributions({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    for (const c of got) {
      const want = byHand.get(c.layer)!;
      const attn = Array.from(c.attn.dataSync());
      const ff = Array.from(c.ff.dataSync());
      for (const [i, v] of want.attn.entries()) expect(attn[i]).toBeCloseTo(v, 5);
      for (const [i, v] of want.ff.entries()) expect(ff[i]).toBeCloseTo(v, 5);
      // text before the first image (row 1's padding and tokens 2–3) attends to nothing: no attention update
      expect(attn.slice(8, 12)).toEqual([0, 0, 0, 0]);
      expect(Math.max(...attn)).toBeGreaterThan(0);
      expect(Math.min(...ff)).toBeGreaterThan(0);
    }
    tf.dispose(got.flatMap((c) => [c.attn, c.ff]));
    // forward's logits are the same after (no state changed)
    const again = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    expect(bits(again.logits)).toEqual(bits(first.logits));
    tf.dispose([first, again] as unknown as tf.TensorContainer);
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });

  test('a block\'s residualUpdates give forwardWithOptions\' output bit for bit', () => {
    const s = setup(1);
    setGates(s.flamingo, 0.3, 0.9);
    const block = s.flamingo.blocks.get(0)!;
    const x = tf.randomNormal([2, 8, 32], 0, 1, 'float32', 5);
    const loc = tf.cast(tf.equal(s.ids, IMAGE), 'int32');
    const before = tf.memory().numTensors;
    const out = block.forwardWithOptions(x, s.media, { mediaLocations: loc });
    const u = block.residualUpdates(x, s.media, { mediaLocations: loc });
    expect(bits(u.output)).toEqual(bits(out));
    expect(tf.tidy(() => maxDiff(u.afterAttn, tf.add(x, u.attn)))).toBe(0);
    expect(tf.tidy(() => maxDiff(u.output, tf.add(u.afterAttn, u.ff)))).toBe(0);
    tf.dispose([out, u.attn, u.afterAttn, u.ff, u.output]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => block.residualUpdates(tf.zeros([2, 8, 31]), s.media)).toThrow(/GatedCrossAttentionBlock x/);
    tf.dispose([x, loc]);
    s.dispose();
  });

  test('errors name the expected and actual shapes', () => {
    const s = setup(1);
    const before = tf.memory().numTensors;
    expect(() => s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask })).toThrow(/expected media \[batch, T, m, dimVisual\]/);
    const wide = tf.zeros([2, 2, 6, 32]);
    expect(() => s.flamingo.forward({ inputIds: s.ids, media: wide })).toThrow(/FlamingoLM media: expected shape \[batch, T, m, dimVisual=24\], got \[2, 2, 6, 32\]/);
    const one = tf.slice(s.media, [0, 0, 0, 0], [2, 1, 6, 24]);
    expect(() => s.flamingo.forward({ inputIds: s.ids, media: one })).toThrow(/names 2 image\(s\) in row 0.*media has shape \[2, 1, 6, 24\]/);
    const badLoc = tf.zeros([2, 5], 'int32');
    expect(() => s.flamingo.forward({ inputIds: s.ids, media: s.media, mediaLocations: badLoc })).toThrow(
      /FlamingoLM mediaLocations: expected shape \[batch=2, queries=8\], got \[2, 5\]/,
    );
    const badMask = tf.ones([2, 7], 'int32');
    expect(() => s.flamingo.forward({ inputIds: s.ids, media: s.media, attentionMask: badMask })).toThrow(/attentionMask: expected shape \[batch=2, pastLength\+queries=8\], got \[2, 7\]/);
    tf.dispose([wide, one, badLoc, badMask]);
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });

  test('insertGatedCrossAttention is the functional form', () => {
    const lm = new TinyDecoder({ vocabSize: 20, hiddenSize: 16, numLayers: 3, numHeads: 2, maxPositions: 16 });
    const f = insertGatedCrossAttention(lm, { dimVisual: 8, crossAttnEveryNLayers: 2, dimHead: 4, heads: 2 });
    expect([...f.blocks.keys()]).toEqual([1]);
    expect(f.lm).toBe(lm);
    f.dispose();
    lm.dispose();
  });

  test('OpenFlamingo checkpoint names (canonical and alias) load strictly', () => {
    const s = setup(2);
    setGates(s.flamingo, 0.25, -0.5);
    const mine = s.flamingo.stateDict();
    const checkpoint: Record<string, tf.Tensor> = { 'vision_encoder.proj': tf.zeros([2]), 'lang_encoder.model.decoder.layers.1.decoder_layer.fc1.weight': tf.zeros([2]) };
    for (const [k, t] of Object.entries(mine)) {
      const [, i, rest] = /^gated_cross_attn_layers\.(\d+)\.(.+)$/.exec(k)!;
      checkpoint[`lang_encoder.model.decoder.layers.${i}.gated_cross_attn_layer.${rest}`] = t;
      checkpoint[`lang_encoder.gated_cross_attn_layers.${i}.${rest}`] = t;
    }
    const fresh = new FlamingoLM({ lm: s.lm, dimVisual: 24, crossAttnEveryNLayers: 2, dimHead: 8, heads: 4 });
    const mapped = flamingoLMStateDictFromOpenFlamingo(checkpoint);
    expect(Object.keys(mapped).sort()).toEqual(Object.keys(mine).sort());
    fresh.loadStateDict(mapped); // strict
    expect(fresh.gateValues()).toEqual(s.flamingo.gateValues());
    tf.dispose(Object.values(checkpoint));
    fresh.dispose();
    s.dispose();
  });

  test('decoderLMStateDictFromOpenFlamingo: the wrapped LM weights under the LM names', () => {
    const s = setup(2);
    setGates(s.flamingo, 0.25, -0.5);
    const before = tf.memory().numTensors;
    // A whole Flamingo.state_dict() around the tiny decoder: FlamingoLayer moves layer i's weights to
    // h.{i}.decoder_layer.*, the blocks sit at h.{i}.gated_cross_attn_layer.*, plus both alias sets.
    const lmDict = s.lm.stateDict();
    const checkpoint: Record<string, tf.Tensor> = { 'vision_encoder.proj': tf.zeros([2]), 'perceiver.latents': tf.zeros([2, 2]) };
    for (const [k, t] of Object.entries(lmDict)) {
      const m = /^h\.(\d+)\.(.+)$/.exec(k);
      if (m) {
        checkpoint[`lang_encoder.h.${m[1]}.decoder_layer.${m[2]}`] = t;
        checkpoint[`lang_encoder.old_decoder_blocks.${m[1]}.${m[2]}`] = t;
      } else {
        checkpoint[`lang_encoder.${k}`] = t;
      }
    }
    const blockDict = s.flamingo.stateDict();
    for (const [k, t] of Object.entries(blockDict)) {
      const [, i, rest] = /^gated_cross_attn_layers\.(\d+)\.(.+)$/.exec(k)!;
      checkpoint[`lang_encoder.h.${i}.gated_cross_attn_layer.${rest}`] = t;
      checkpoint[`lang_encoder.gated_cross_attn_layers.${i}.${rest}`] = t;
    }
    const mapped = decoderLMStateDictFromOpenFlamingo(checkpoint);
    expect(Object.keys(mapped).sort()).toEqual(Object.keys(lmDict).sort());
    expect(mapped['h.1.ln_1.weight']).toBe(checkpoint['lang_encoder.h.1.decoder_layer.ln_1.weight']); // not copied
    expect(mapped['wte.weight']).toBe(checkpoint['lang_encoder.wte.weight']);

    // It loads strictly into a fresh LM, which then gives the same logits; the blocks load alongside.
    const lm = new TinyDecoder({ vocabSize: 50, hiddenSize: 32, numLayers: 4, numHeads: 4, maxPositions: 64 });
    lm.loadStateDict(mapped);
    const fresh = new FlamingoLM({ lm, dimVisual: 24, crossAttnEveryNLayers: 2, dimHead: 8, heads: 4, mediaTokenId: IMAGE });
    fresh.loadStateDict(flamingoLMStateDictFromOpenFlamingo(checkpoint));
    const want = s.flamingo.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    const got = fresh.forward({ inputIds: s.ids, attentionMask: s.mask, media: s.media });
    expect(maxDiff(got.logits, want.logits)).toBe(0);

    // Keys outside lang_encoder. and the released checkpoint's subset
    expect(decoderLMStateDictFromOpenFlamingo({ 'perceiver.latents': checkpoint['perceiver.latents']! })).toEqual({});
    expect(Object.keys(decoderLMStateDictFromOpenFlamingo({ 'lang_encoder.model.decoder.embed_tokens.weight': lmDict['wte.weight']! }))).toEqual([
      'model.decoder.embed_tokens.weight',
    ]);
    tf.dispose([want.logits, want.lastHiddenState, got.logits, got.lastHiddenState, checkpoint['vision_encoder.proj']!, checkpoint['perceiver.latents']!]);
    tf.dispose([...Object.values(lmDict), ...Object.values(blockDict)]);
    fresh.dispose();
    lm.dispose();
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });
});
