import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { createDecoderLM, generate, loadTokenizer, type LMTokenizer } from '../src/lm/index';
import { realTokenizerIds, realTokenizerJson } from './real-tokenizers';

/** A tiny GPT-2 style byte-level BPE tokenizer.json, built here (no network). */
function tinyTokenizerJson(mergesAsPairs = false) {
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  for (const c of [...'abcdefghijklmnopqrstuvwxyz', 'Ġ', '.', ',']) vocab[c] = Object.keys(vocab).length;
  const merges = [['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o'], ['Ġ', 'w'], ['o', 'r'], ['Ġw', 'or'], ['l', 'd'], ['Ġwor', 'ld']];
  for (const [a, b] of merges) vocab[a! + b!] = Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
      vocab,
      merges: mergesAsPairs ? merges : merges.map((m) => m.join(' ')),
    },
  };
}

test('loads a tokenizer.json, adds <image> and <|endofchunk|> as unsplittable special tokens, keeps existing ids', () => {
  const json = tinyTokenizerJson();
  const tok = loadTokenizer(JSON.stringify(json), { addSpecialTokens: ['<image>', '<|endofchunk|>', '<|endoftext|>'] });
  expect(tok.addedTokenIds).toEqual({ '<image>': 39, '<|endofchunk|>': 40, '<|endoftext|>': 0 });
  expect(tok.vocabSize).toBe(41);
  expect(json.added_tokens).toHaveLength(1); // the caller's object is not modified
  const text = '<image>hello world<|endofchunk|><image>hello.<|endoftext|>';
  expect(tok.tokenize(text)).toEqual(['<image>', 'hello', 'Ġworld', '<|endofchunk|>', '<image>', 'hello', '.', '<|endoftext|>']);
  const ids = tok.encode(text);
  expect(ids).toEqual([39, 33, 38, 40, 39, 33, 28, 0]);
  expect(tok.decode(ids)).toBe(text);
  expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('hello worldhello.');
  expect(tok.tokenToId('<|endofchunk|>')).toBe(40);
  expect(tok.idToToken(38)).toBe('Ġworld');
  // newer tokenizer.json files store merges as pairs
  expect(loadTokenizer(tinyTokenizerJson(true)).encode('hello world')).toEqual([33, 38]);
});

test('left-padded batches with the pad token from tokenizer_config.json', () => {
  const tok = loadTokenizer(tinyTokenizerJson(), { tokenizerConfig: { pad_token: '<|endoftext|>' }, addSpecialTokens: ['<image>'] });
  expect(tok.configTokenId('pad_token')).toBe(0);
  const left = tok.encodeBatch(['<image>hello world', 'hello']);
  expect(left).toEqual({ inputIds: [[39, 33, 38], [0, 0, 33]], attentionMask: [[1, 1, 1], [0, 0, 1]] });
  const right = tok.encodeBatch(['hello', 'hello world'], { paddingSide: 'right', padTokenId: 5 });
  expect(right).toEqual({ inputIds: [[33, 5], [33, 38]], attentionMask: [[1, 0], [1, 1]] });
});

test('tokenizer → batched generation → decode', () => {
  const tok = loadTokenizer(tinyTokenizerJson(), { addSpecialTokens: ['<image>'] });
  const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: tok.vocabSize, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 });
  const before = tf.memory().numTensors;
  const batch = tok.encodeBatch(['<image>hello world', 'hello'], { padTokenId: 0 });
  const { newTokens } = generate(lm, { ...batch, maxNewTokens: 4 });
  const alone = generate(lm, { inputIds: [tok.encode('hello')], maxNewTokens: 4 }).newTokens[0];
  expect(newTokens[1]).toEqual(alone);
  expect(typeof tok.decode(newTokens[0]!)).toBe('string');
  expect(tf.memory().numTensors).toBe(before);
  lm.dispose();
});

describe.each(Object.entries(realTokenizerIds.tokenizers))('real tokenizer.json: %s', (name, fixture) => {
  let tok: LMTokenizer;
  beforeAll(() => {
    tok = loadTokenizer(realTokenizerJson(fixture));
  }, 180_000);

  test(`loads with its ${fixture.vocabSize} ids (no call-stack overflow on a large vocabulary)`, () => {
    expect(tok.vocabSize).toBe(fixture.vocabSize);
  });

  test.each(fixture.cases.map((c) => [JSON.stringify(c.text).slice(0, 50), c] as const))('same ids and text as Python tokenizers: %s', (_, c) => {
    expect(tok.encode(c.text)).toEqual(c.ids);
    expect(tok.encode(c.text, { addSpecialTokens: false })).toEqual(c.idsWithoutSpecial);
    expect(tok.decode(c.ids)).toBe(c.decoded);
    expect(tok.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decodedSkipSpecial);
  });

  test("Flamingo's added special tokens get the next ids, as in Python tokenizers", () => {
    const withAdded = loadTokenizer(realTokenizerJson(fixture), { addSpecialTokens: fixture.added.tokens });
    expect(fixture.added.tokens.map((t) => withAdded.addedTokenIds[t])).toEqual(fixture.added.ids);
    expect(withAdded.vocabSize).toBe(fixture.vocabSize + fixture.added.tokens.length);
    expect(withAdded.encode(fixture.added.text, { addSpecialTokens: false })).toEqual(fixture.added.textIds);
    expect(withAdded.decode(fixture.added.textIds, { skipSpecialTokens: true })).toBe(fixture.added.decodedSkipSpecial);
  });

  test('decode([]) is empty; an id outside the vocabulary is an error naming it', () => {
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([999999])).toThrow(new RegExp(`expected token ids that are integers in \\[0, ${fixture.vocabSize}\\).*got 999999 at index 0`));
    expect(() => tok.decode([1, fixture.vocabSize])).toThrow(`got ${fixture.vocabSize} at index 1`);
    expect(() => tok.decode([-1])).toThrow('got -1 at index 0');
    expect(() => tok.decode([1.5])).toThrow('got 1.5 at index 0');
  });
});
