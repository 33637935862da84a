import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { flamingoBatch, softPromptBatch, swapContextWords, unitDataset, type Tokenized } from '../src/batches';

// ids: 2 = BOS, 4 = <image>, 30 = "a", 18 = "small", 6..12 = colours, 13..17 = shapes, 5 = <|endofchunk|>
const COLOURS = [6, 7, 8, 9, 10, 11, 12];
const caption = (colour: number, shape: number, image: number): Tokenized => ({ ids: [2, 4, 30, 18, colour, shape, 5], promptLength: 3, images: [image] });
const prompted = (colour: number): Tokenized => ({ ids: [2, 4, colour, 30, colour, 5], promptLength: 3, images: [0] }); // a colour in the prompt

describe('swapContextWords (the demo\'s Flamingo recipe)', () => {
  test('rate 1 reads every colour of the target that a word follows as another colour; the prompt and the last token are never swapped', () => {
    const unit = [caption(6, 16, 0), caption(9, 14, 1), prompted(7), { ids: [2, 4, 30, 8], promptLength: 3, images: [2] }];
    const read = swapContextWords(unit, { words: COLOURS, rate: 1, seed: 3 });
    for (const r of [0, 1]) {
      const [orig, got] = [unit[r]!.ids, read[r]!.ids];
      expect(got.filter((v, t) => v !== orig[t]).length).toBe(1);
      expect(COLOURS).toContain(got[4]);
      expect(got[4]).not.toBe(orig[4]);
      expect([...got.slice(0, 4), ...got.slice(5)]).toEqual([...orig.slice(0, 4), ...orig.slice(5)]);
    }
    expect(read[2]!.ids.slice(0, 3)).toEqual([2, 4, 7]); // prompt colour kept
    expect(read[2]!.ids[4]).not.toBe(7); // target colour swapped
    expect(read[3]!.ids).toEqual([2, 4, 30, 8]); // a colour as the last token predicts nothing: kept
    expect(read.map((u) => u.promptLength)).toEqual(unit.map((u) => u.promptLength));
  });

  test('rate 0 changes nothing; a seed gives the same draw; about `rate` of the eligible words are swapped', () => {
    const unit = Array.from({ length: 400 }, (_, i) => caption(COLOURS[i % 7]!, 13 + (i % 5), i));
    expect(swapContextWords(unit, { words: COLOURS, rate: 0, seed: 1 }).map((u) => u.ids)).toEqual(unit.map((u) => u.ids));
    const a = swapContextWords(unit, { words: COLOURS, rate: 0.5, seed: 1 });
    expect(swapContextWords(unit, { words: COLOURS, rate: 0.5, seed: 1 })).toEqual(a);
    expect(swapContextWords(unit, { words: COLOURS, rate: 0.5, seed: 2 })).not.toEqual(a);
    const swapped = a.filter((u, i) => u.ids[4] !== unit[i]!.ids[4]).length / unit.length;
    expect(swapped).toBeGreaterThan(0.4);
    expect(swapped).toBeLessThan(0.6);
  });

  test('flamingoBatch with a swap: the ids read carry the swap, the labels the truth; each unit comes in `views` versions', () => {
    const features = tf.zeros([2, 3, 4]) as tf.Tensor3D;
    const unit = [caption(6, 16, 0), caption(9, 14, 1)];
    const before = tf.memory().numTensors;
    const data = unitDataset([unit], (u, view) => flamingoBatch(u, features, 0, { words: COLOURS, rate: 1, seed: 10 + view }), 3);
    expect(data.size).toBe(3);
    const [b0, b2] = [data.batch([0]), data.batch([2])];
    const [read0, read2, labels] = [b0.inputIds.arraySync(), b2.inputIds.arraySync(), b0.labels.arraySync()];
    expect(labels).toEqual([[-100, -100, -100, 18, 6, 16, 5], [-100, -100, -100, 18, 9, 14, 5]]);
    expect(read0.map((r) => r[4])).not.toEqual([6, 9]);
    expect(read0.map((r) => [...r.slice(0, 4), ...r.slice(5)])).toEqual(unit.map((u) => [...u.ids.slice(0, 4), ...u.ids.slice(5)]));
    expect(read2).not.toEqual(read0); // another version, another draw
    const again = data.batch([0]);
    expect(again.inputIds.arraySync()).toEqual(read0); // a pure function of the index (resume)
    tf.dispose([b0, b2, again].flatMap((b) => [b.inputIds, b.attentionMask, b.labels, b.visionTokens]));
    expect(tf.memory().numTensors).toBe(before);
    features.dispose();
  });

  test('softPromptBatch with a swap: the ids read carry the swap, the labels (aligned, placeholders included) the truth; without, no labels', () => {
    const features = tf.zeros([2, 3, 4]) as tf.Tensor3D;
    const unit = [caption(6, 16, 0), caption(9, 14, 1)];
    // each <image> becomes 2 placeholders (what a soft-prompt model with 2 visual tokens does)
    const model = { expandImageTokens: (rows: readonly (readonly number[])[]) => rows.map((r) => r.flatMap((v) => (v === 4 ? [4, 4] : [v]))) };
    const before = tf.memory().numTensors;
    const plain = softPromptBatch(model, unit, features, 0, 4);
    expect(plain.labels).toBeUndefined();
    const swapped = softPromptBatch(model, unit, features, 0, 4, { words: COLOURS, rate: 1, seed: 5 });
    const truth = unit.map((u) => u.ids.flatMap((v) => (v === 4 ? [4, 4] : [v])));
    expect(swapped.labels!.arraySync()).toEqual(truth);
    expect(plain.inputIds.arraySync()).toEqual(truth);
    const read = swapped.inputIds.arraySync();
    expect(read.map((r) => r[5])).not.toEqual([6, 9]); // the colours (after BOS, 2 placeholders, "a", "small") are read swapped
    expect(read.map((r) => [...r.slice(0, 5), ...r.slice(6)])).toEqual(truth.map((r) => [...r.slice(0, 5), ...r.slice(6)]));
    expect(swapped.promptLength).toEqual(plain.promptLength);
    tf.dispose([plain, swapped]);
    expect(tf.memory().numTensors).toBe(before);
    features.dispose();
  });
});
