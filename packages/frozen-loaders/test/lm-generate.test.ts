import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { seededRandom } from '@vlm/core';
import { argmax, chooseToken, generate, loadDecoderLMFromStateDict, type CausalLM, type GeneratedTokenEvent } from '../src/lm/index';
import { readLMCase, rows, type LMCase } from './lm-helpers';

describe('token choice', () => {
  test('greedy is the first argmax; top-k 1 and a tiny top-p reduce sampling to greedy', () => {
    const logits = new Float32Array([0.5, 2, 2, -1, 1.9]);
    expect(argmax(logits)).toBe(1);
    const rng = seededRandom(3);
    // HF keeps every token tied with the k-th: 1 and 2 here
    for (let i = 0; i < 20; i++) expect([1, 2]).toContain(chooseToken(logits, { doSample: true, topK: 1 }, rng));
    const strict = new Float32Array([0.5, 3, 2, -1, 1.9]);
    for (let i = 0; i < 20; i++) expect(chooseToken(strict, { doSample: true, topK: 1 }, rng)).toBe(1);
    for (let i = 0; i < 20; i++) expect(chooseToken(strict, { doSample: true, topP: 1e-6 }, rng)).toBe(1);
  });

  test('sampling follows the (tempered, truncated) distribution and is reproducible under a seed', () => {
    const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const draw = (seed: number, opts = {}) => {
      const rng = seededRandom(seed);
      return Array.from({ length: 4000 }, () => chooseToken(logits, { doSample: true, ...opts }, rng));
    };
    const a = draw(7);
    expect(draw(7)).toEqual(a);
    expect(draw(8)).not.toEqual(a);
    const freq = (xs: number[], k: number) => xs.filter((x) => x === k).length / xs.length;
    expect(freq(a, 0)).toBeCloseTo(0.5, 1);
    expect(freq(a, 3)).toBeCloseTo(0.05, 1);
    const topK = draw(1, { topK: 2 });
    expect(new Set(topK)).toEqual(new Set([0, 1]));
    expect(freq(topK, 0)).toBeCloseTo(0.5 / 0.8, 1);
    // top-p 0.7: {0.5, 0.3} reach 0.8 >= 0.7, so only tokens 0 and 1 remain
    expect(new Set(draw(2, { topP: 0.7 }))).toEqual(new Set([0, 1]));
    // a low temperature sharpens towards the argmax
    expect(freq(draw(4, { temperature: 0.1 }), 0)).toBeGreaterThan(0.99);
    expect(() => chooseToken(logits, { doSample: true, temperature: 0 }, Math.random)).toThrow(/temperature/);
  });
});

describe('generate()', () => {
  let c: LMCase;
  let lm: CausalLM;
  let prompt: number[];
  let golden: number[];
  beforeAll(() => {
    c = readLMCase('gpt2_generate');
    lm = loadDecoderLMFromStateDict(c.config, c.weights);
    prompt = rows(c.tensors['input.input_ids']!)[0]!;
    golden = rows(c.tensors['output.generated_ids']!)[0]!.slice(prompt.length);
  });
  afterAll(() => {
    lm.dispose();
    c.dispose();
  });

  test('sampling: same seed, same tokens; other seeds differ; top-k 1 is greedy; no tensor leaks', () => {
    const before = tf.memory().numTensors;
    const opts = { inputIds: [prompt, [3, 1, 4, 1, 5]], maxNewTokens: 12, doSample: true, temperature: 1.3, topK: 40, topP: 0.95 };
    const a = generate(lm, { ...opts, seed: 11 });
    expect(generate(lm, { ...opts, seed: 11 }).sequences).toEqual(a.sequences);
    const others = [12, 13, 14].map((seed) => generate(lm, { ...opts, seed }).sequences);
    expect(others.some((s) => JSON.stringify(s) !== JSON.stringify(a.sequences))).toBe(true);
    expect(generate(lm, { inputIds: [prompt], maxNewTokens: 6, doSample: true, topK: 1, seed: 5 }).newTokens[0]).toEqual(golden);
    expect(generate(lm, { ...opts, seed: 11, useCache: false }).sequences).toEqual(a.sequences);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('stop tokens end a row (kept), later tokens of finished rows are padding, generation ends when all rows stop', () => {
    const stop = golden[2]!;
    const one = generate(lm, { inputIds: [prompt], maxNewTokens: 6, stopTokenIds: [stop] });
    expect(one.newTokens[0]).toEqual(golden.slice(0, golden.indexOf(stop) + 1));
    const other = [7, 8, 9, 10, 11];
    const alone = generate(lm, { inputIds: [other], maxNewTokens: 6 }).newTokens[0]!;
    const two = generate(lm, { inputIds: [prompt, other], maxNewTokens: 6, stopTokenIds: [stop], padTokenId: 96 });
    const cut = golden.indexOf(stop) + 1;
    if (!alone.slice(0, 6).includes(stop)) {
      expect(two.newTokens[1]).toEqual(alone);
      expect(two.newTokens[0]).toEqual([...golden.slice(0, cut), ...Array<number>(6 - cut).fill(96)]);
    }
    expect(two.sequences[0]!.slice(0, prompt.length)).toEqual(prompt);
  });

  test('streams every step through onToken', () => {
    const events: GeneratedTokenEvent[] = [];
    const { newTokens } = generate(lm, { inputIds: [prompt], maxNewTokens: 6, onToken: (e) => events.push(e) });
    expect(events.map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(events.map((e) => e.tokens[0])).toEqual(newTokens[0]);
    expect(events.every((e) => e.finished[0] === false)).toBe(true);
    const stopped: GeneratedTokenEvent[] = [];
    generate(lm, { inputIds: [prompt], maxNewTokens: 6, stopTokenIds: [golden[1]!], onToken: (e) => stopped.push(e) });
    expect(stopped.map((e) => e.finished[0])).toEqual([false, true]);
  });

  test('inputsEmbeds (a soft prompt) generates like the ids it embeds; ids given too prefix the sequences', () => {
    const before = tf.memory().numTensors;
    const ids = tf.tensor2d([prompt], undefined, 'int32');
    const embeds = lm.embedTokens(ids);
    const viaEmbeds = generate(lm, { inputsEmbeds: embeds, maxNewTokens: 6 });
    expect(viaEmbeds.sequences[0]).toEqual(golden);
    expect(generate(lm, { inputsEmbeds: embeds, inputIds: ids, maxNewTokens: 6 }).sequences[0]).toEqual([...prompt, ...golden]);
    expect(generate(lm, { inputsEmbeds: embeds, maxNewTokens: 6, useCache: false }).sequences[0]).toEqual(golden);
    tf.dispose([ids, embeds]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('argument errors', () => {
    expect(() => generate(lm, { maxNewTokens: 3 })).toThrow(/inputIds or inputsEmbeds/);
    expect(() => generate(lm, { inputIds: [prompt], maxNewTokens: -1 })).toThrow(/maxNewTokens/);
    expect(() => generate(lm, { inputIds: [prompt], attentionMask: [[1, 1]], maxNewTokens: 1 })).toThrow(/attentionMask/);
    expect(generate(lm, { inputIds: [prompt], maxNewTokens: 0 }).sequences).toEqual([prompt]);
  });
});
