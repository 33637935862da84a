import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { QFormer, resolveQFormerArgs } from '@vlm/qformer';
import { TINY, ids2d, loadGolden } from './helpers';

describe('QFormer input and weight errors name what was expected and what was given', () => {
  let q: QFormer;
  let image: tf.Tensor;
  let ids: tf.Tensor;
  beforeAll(() => {
    q = new QFormer(TINY);
    image = tf.zeros([2, 17, 24]);
    ids = ids2d([
      [1, 2, 3],
      [4, 5, 0],
    ]);
  });
  afterAll(() => {
    tf.dispose([image, ids]);
    q.dispose();
  });

  test('shapes and dtypes', () => {
    const wide = tf.zeros([2, 17, 25]);
    expect(() => q.encode({ imageEmbeds: wide })).toThrow(/QFormer imageEmbeds: expected shape \[batch, tokens, encoderHiddenSize=24\], got \[2, 17, 25\]/);
    const flat = tf.zeros([2, 24]);
    expect(() => q.forward(flat)).toThrow(/expected shape \[batch, tokens, encoderHiddenSize=24\], got \[2, 24\]/);
    const floatIds = tf.zeros([2, 3]);
    expect(() => q.encode({ imageEmbeds: image, inputIds: floatIds, mode: 'itm' })).toThrow(/QFormer inputIds: expected dtype int32, got float32/);
    const otherBatch = ids2d([[1, 2, 3]]);
    expect(() => q.encode({ imageEmbeds: image, inputIds: otherBatch, mode: 'itg' })).toThrow(/QFormer inputIds: expected shape \[batch=2, text\], got \[1, 3\]/);
    const mask = tf.ones([2, 4], 'int32');
    expect(() => q.encode({ imageEmbeds: image, inputIds: ids, attentionMask: mask, mode: 'itc' })).toThrow(
      /QFormer attentionMask: expected shape \[batch=2, text=3\], got \[2, 4\]/,
    );
    const long = tf.ones([1, 17], 'int32');
    expect(() => q.encode({ inputIds: long, mode: 'text' })).toThrow(/expected at most maxPositionEmbeddings=16 tokens, got 17/);
    const outOfVocab = ids2d([[1, 50]]);
    expect(() => q.encode({ inputIds: outOfVocab, mode: 'text' })).toThrow(/Embedding ids must be in \[0, 50\), got values in \[1, 50\]/);
    tf.dispose([wide, flat, floatIds, otherBatch, mask, long, outOfVocab]);
  });

  test('missing inputs for a mode, unknown modes, no text branch, bad arguments', () => {
    expect(() => q.encode({ inputIds: ids, mode: 'itm' })).toThrow(/mode 'itm' needs imageEmbeds \[batch, tokens, 24\]/);
    expect(() => q.encode({ imageEmbeds: image, mode: 'itg' })).toThrow(/mode 'itg' needs inputIds/);
    expect(() => q.encode({ imageEmbeds: image, mode: 'bogus' as never })).toThrow(/mode must be one of query, text, itm, itg, itc, got 'bogus'/);
    const noText = new QFormer({ ...TINY, useTextInput: false });
    expect(() => noText.encode({ imageEmbeds: image, inputIds: ids, mode: 'itm' })).toThrow(/needs the text branch; build the QFormer with useTextInput: true/);
    noText.dispose();
    expect(() => resolveQFormerArgs({ hiddenSize: 30, numAttentionHeads: 4 })).toThrow(/hiddenSize \(30\) must be divisible by numAttentionHeads \(4\)/);
    expect(() => resolveQFormerArgs({ numQueryTokens: 0 })).toThrow(/numQueryTokens: expected a positive integer, got 0/);
  });

  test('missing, unexpected and mis-shaped state-dict keys', () => {
    const sd = q.stateDict();
    const { query_tokens: dropped, ...missing } = sd;
    expect(() => q.loadStateDict(missing)).toThrow(/Missing key\(s\) in state_dict:\n {2}query_tokens/);
    const extra = tf.zeros([3]);
    expect(() => q.loadStateDict({ ...sd, 'encoder.layer.1.crossattention.output.dense.bias': extra })).toThrow(
      /Unexpected key\(s\) in state_dict:\n {2}encoder\.layer\.1\.crossattention\.output\.dense\.bias/,
    );
    const bad = tf.zeros([32, 25]);
    expect(() => q.loadStateDict({ ...sd, 'encoder.layer.0.crossattention.attention.key.weight': bad })).toThrow(
      /encoder\.layer\.0\.crossattention\.attention\.key\.weight: expected shape \[32, 24\], got \[32, 25\]/,
    );
    tf.dispose([...Object.values(sd), dropped!, extra, bad]);
  });

  test('state-dict keys are the PyTorch names of the reference QFormer, cross-attention on layers 0 and 2 only', () => {
    const keys = Object.keys(q.stateDictShapes());
    expect(keys).toContain('encoder.layer.0.crossattention.attention.key.weight');
    expect(keys).toContain('encoder.layer.2.crossattention.output.LayerNorm.bias');
    expect(keys.some((k) => k.startsWith('encoder.layer.1.crossattention'))).toBe(false);
    expect(q.stateDictShapes()['encoder.layer.0.crossattention.attention.value.weight']).toEqual([32, 24]);
    expect(q.stateDictShapes()['encoder.layer.1.output_query.dense.weight']).toEqual([32, 64]);
    expect(q.stateDictShapes().query_tokens).toEqual([1, 8, 32]);
    expect(keys).toContain('embeddings.word_embeddings.weight');
    expect(keys.length).toBe(1 + 2 + 2 + 3 * (10 + 2 + 4 + 2 + 4) + 2 * 10);
    // exactly the parameter set of the reference module (the golden case lists every one)
    const g = loadGolden('qformer_itm');
    expect([...keys].sort()).toEqual(Object.keys(g.params).sort());
    g.dispose();
  });

  test('forward and gradient calls leak no tensors', () => {
    const before = tf.memory().numTensors;
    for (const mode of ['query', 'text', 'itm', 'itg', 'itc'] as const) {
      const out = q.encode({ imageEmbeds: image, inputIds: ids, mode });
      tf.dispose(Object.values(out));
      const { value, grads } = tf.variableGrads(() => tf.sum(q.encode({ imageEmbeds: image, inputIds: ids, mode }).lastHiddenState) as tf.Scalar, q.parameters());
      tf.dispose([value, ...Object.values(grads)]);
    }
    tf.dispose(q.forward(image));
    expect(tf.memory().numTensors).toBe(before);
  });
});
