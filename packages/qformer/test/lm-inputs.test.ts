import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { Embedding, Linear, freeze, trainableVariables } from '@vlm/core';
import { QFormer, addImagePlaceholders, buildLmInputs, causalLmLoss } from '@vlm/qformer';
import { TINY, ids2d } from './helpers';

const Q = 2;
const D = 3;
// visual[b][q] = [10b + q, 10b + q, 10b + q]; token embeddings = [-id, -id, -id]
const visual = () => tf.tensor3d([0, 1, 10, 11].flatMap((v) => [v, v, v]), [2, Q, D]);
const embed = (ids: number[][]) => tf.tensor3d(ids.map((r) => r.map((id) => [-id, -id, -id])));

describe('stage 2/3: buildLmInputs', () => {
  test("LAVIS layout: queries prepended; labels -100 exactly on query, prompt and padding positions", () => {
    const ids = [
      [2, 31, 32, 40, 41], // BOS, prompt "31 32", answer "40 41"
      [2, 33, 42, 1, 1], //   BOS, prompt "33", answer "42", right padding (pad id 1)
    ];
    const mask = [
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
    ];
    const before = tf.memory().numTensors;
    const [v, e, i, m] = [visual(), embed(ids), ids2d(ids), ids2d(mask)];
    const lm = buildLmInputs({ layout: 'lavis', visualEmbeds: v, inputIds: i, inputsEmbeds: e, attentionMask: m, promptLength: [3, 2] });
    expect(lm.inputsEmbeds.shape).toEqual([2, Q + 5, D]);
    expect((lm.inputsEmbeds.arraySync() as number[][][]).map((r) => r.map((x) => x[0]))).toEqual([
      [0, 1, -2, -31, -32, -40, -41],
      [10, 11, -2, -33, -42, -1, -1],
    ]);
    expect(lm.attentionMask.arraySync()).toEqual([
      [1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 0, 0],
    ]);
    expect(lm.labels.arraySync()).toEqual([
      [-100, -100, -100, -100, -100, 40, 41],
      [-100, -100, -100, -100, 42, -100, -100],
    ]);
    tf.dispose([v, e, i, m, lm.inputsEmbeds, lm.attentionMask, lm.labels]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('Hugging Face layout: placeholders before left padding and BOS are replaced row-major; gradients reach the queries', () => {
    const text = [
      [1, 2, 31, 40], // left-padded by 1: pad, BOS, prompt "31", answer "40"
      [2, 32, 33, 41], // BOS, prompt "32 33", answer "41"
    ];
    const textMask = [
      [0, 1, 1, 1],
      [1, 1, 1, 1],
    ];
    const t = ids2d(text);
    const tm = ids2d(textMask);
    const withImage = addImagePlaceholders({ inputIds: t, attentionMask: tm, numQueryTokens: Q, imageTokenIndex: 108 });
    const ids = withImage.inputIds.arraySync() as number[][];
    expect(ids).toEqual([
      [108, 108, 1, 2, 31, 40],
      [108, 108, 2, 32, 33, 41],
    ]);
    expect(withImage.attentionMask.arraySync()).toEqual([
      [1, 1, 0, 1, 1, 1],
      [1, 1, 1, 1, 1, 1],
    ]);
    const v = tf.variable(visual());
    const e = embed(ids);
    const lm = buildLmInputs({
      layout: 'hf',
      visualEmbeds: v,
      inputIds: withImage.inputIds,
      inputsEmbeds: e,
      attentionMask: withImage.attentionMask,
      imageTokenIndex: 108,
      promptLength: [2, 3],
    });
    expect((lm.inputsEmbeds.arraySync() as number[][][]).map((r) => r.map((x) => x[0]))).toEqual([
      [0, 1, -1, -2, -31, -40],
      [10, 11, -2, -32, -33, -41],
    ]);
    expect(lm.labels.arraySync()).toEqual([
      [-100, -100, -100, -100, -100, 40],
      [-100, -100, -100, -100, -100, 41],
    ]);
    const { value, grads } = tf.variableGrads(
      () =>
        tf.sum(
          tf.mul(
            buildLmInputs({ layout: 'hf', visualEmbeds: v, inputIds: withImage.inputIds, inputsEmbeds: e, imageTokenIndex: 108 }).inputsEmbeds,
            tf.reshape(tf.range(1, 37), [2, 6, 3]),
          ),
        ) as tf.Scalar,
      [v],
    );
    // d/dvisual[b, q] = the weights at the position of the q-th placeholder of row b (positions 0 and 1)
    expect((grads[v.name]!.arraySync() as number[][][]).map((r) => r.map((x) => x[0]))).toEqual([
      [1, 4],
      [19, 22],
    ]);
    tf.dispose([t, tm, withImage.inputIds, withImage.attentionMask, v, e, lm.inputsEmbeds, lm.attentionMask, lm.labels, value, ...Object.values(grads)]);
  });

  test('a wrong placeholder count, a missing imageTokenIndex and wrong shapes are clear errors', () => {
    const v = visual();
    const ids = ids2d([
      [108, 5, 6],
      [108, 108, 7],
    ]);
    const e = embed([
      [108, 5, 6],
      [108, 108, 7],
    ]);
    expect(() => buildLmInputs({ layout: 'hf', visualEmbeds: v, inputIds: ids, inputsEmbeds: e, imageTokenIndex: 108 })).toThrow(
      /expected batch·numQueryTokens = 2·2 = 4 image placeholder tokens \(id 108\) in inputIds, got 3/,
    );
    expect(() => buildLmInputs({ layout: 'hf', visualEmbeds: v, inputIds: ids, inputsEmbeds: e })).toThrow(/needs imageTokenIndex/);
    const bad = tf.zeros([2, 3, 4]);
    expect(() => buildLmInputs({ layout: 'lavis', visualEmbeds: v, inputIds: ids, inputsEmbeds: bad })).toThrow(
      /inputsEmbeds: expected shape \[batch=2, length=3, lmHidden=3\], got \[2, 3, 4\]/,
    );
    expect(() => buildLmInputs({ layout: 'lavis', visualEmbeds: v, inputIds: ids, inputsEmbeds: e, promptLength: [1] })).toThrow(/promptLength/);
    tf.dispose([v, ids, e, bad]);
  });
});

describe('stage 2 end to end', () => {
  test('Q-Former → language projection → frozen LM input → LM loss trains the bridge only, without leaks', () => {
    const qformer = new QFormer({ ...TINY, useTextInput: false, llmHiddenSize: 12 });
    // a stand-in frozen LM: token embeddings and an output head
    const embedTokens = freeze(new Embedding({ numEmbeddings: 20, embeddingDim: 12 }));
    const head = freeze(new Linear({ inFeatures: 12, outFeatures: 20 }));
    const image = tf.randomNormal([2, 17, 24], 0, 1, 'float32', 3);
    const ids = ids2d([
      [2, 5, 6, 7, 8],
      [2, 9, 10, 1, 1],
    ]);
    const mask = ids2d([
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
    ]);
    const before = tf.memory().numTensors;
    const loss = () => {
      const lm = buildLmInputs({ layout: 'lavis', visualEmbeds: qformer.forward(image), inputIds: ids, inputsEmbeds: embedTokens.forward(ids), attentionMask: mask, promptLength: 2 });
      return causalLmLoss(head.forward(lm.inputsEmbeds), lm.labels);
    };
    const vars = trainableVariables(qformer, embedTokens, head);
    expect(vars.length).toBe(qformer.parameters().length);
    const { value, grads } = tf.variableGrads(loss, vars);
    expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
    const names = Object.fromEntries(qformer.namedParameters().map(([n, v]) => [v.name, n]));
    const reached = Object.keys(grads).map((k) => names[k]);
    expect(reached).toEqual(expect.arrayContaining(['language_projection.weight', 'query_tokens', 'encoder.layer.0.crossattention.attention.key.weight']));
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([image, ids, mask]);
    qformer.dispose();
    embedTokens.dispose();
    head.dispose();
  });
});
