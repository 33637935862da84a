import { seededRandom } from '@vlm/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import {
  QFormerStage1,
  causalLmLoss,
  crossEntropy,
  itcLoss,
  itgDecoderInputs,
  sampleHardNegatives,
} from '@vlm/qformer';
import { TINY, ids2d } from './helpers';

// ---- plain-JS arithmetic, written out by hand --------------------------------------------
const norm = (v: number[]) => {
  const n = Math.max(Math.sqrt(v.reduce((a, x) => a + x * x, 0)), 1e-12);
  return v.map((x) => x / n);
};
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
/** PyTorch cross_entropy of one row with label smoothing eps. */
const ceRow = (logits: number[], y: number, eps: number) => {
  const m = Math.max(...logits);
  const lse = m + Math.log(logits.reduce((a, l) => a + Math.exp(l - m), 0));
  const logp = logits.map((l) => l - lse);
  return (1 - eps) * -logp[y]! + eps * -(logp.reduce((a, x) => a + x, 0) / logp.length);
};

describe('crossEntropy', () => {
  test('equals PyTorch semantics by hand: mean over non-ignored rows, label smoothing', () => {
    const logits = [
      [1, 2, 0.5],
      [0, -1, 3],
      [2, 2, 2],
    ];
    const labels = [1, -100, 2];
    const t = tf.tensor2d(logits);
    for (const eps of [0, 0.1]) {
      const got = crossEntropy(t, labels, { labelSmoothing: eps });
      const want = (ceRow(logits[0]!, 1, eps) + ceRow(logits[2]!, 2, eps)) / 2;
      expect(got.dataSync()[0]).toBeCloseTo(want, 5);
      got.dispose();
    }
    expect(() => crossEntropy(t, [0, 3, 1])).toThrow(/labels must be in \[0, 3\) or -100, got 3/);
    expect(() => crossEntropy(t, [0, 1])).toThrow(/expected 3 labels \(one per logits row\), got 2/);
    t.dispose();
  });
});

describe('ITC', () => {
  test('the loss on a tiny batch equals the value computed by hand', () => {
    const img = [
      [[1, 0, 0], [0, 2, 0]],
      [[0, 0, 3], [1, 1, 0]],
      [[-1, 2, 1], [0.5, 0, -1]],
    ]; // [b=3, Q=2, D=3]
    const txt = [
      [1, 1, 0],
      [0, 0, -2],
      [0.3, -1, 2],
    ]; // [b=3, D=3]
    const temp = 0.07;
    const eps = 0.1;
    // sim[i][j] = max_q <norm(img[i][q]), norm(txt[j])> / temp
    const sim = img.map((qs) => txt.map((t) => Math.max(...qs.map((q) => dot(norm(q), norm(t)))) / temp));
    const i2t = sim.map((row, i) => ceRow(row, i, eps)).reduce((a, x) => a + x, 0) / 3;
    const t2i = sim.map((_, j) => ceRow(sim.map((r) => r[j]!), j, eps)).reduce((a, x) => a + x, 0) / 3;
    const want = (i2t + t2i) / 2;

    const before = tf.memory().numTensors;
    const a = tf.tensor3d(img);
    const b = tf.tensor2d(txt);
    const tempT = tf.scalar(temp);
    const { loss, logits } = itcLoss(a, b, tempT, { labelSmoothing: eps });
    expect(loss.dataSync()[0]).toBeCloseTo(want, 4);
    (logits.arraySync() as number[][]).forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(sim[i]![j]!, 3)));
    // without smoothing it is a different, also hand-checked, number
    const plain = itcLoss(a, b, temp);
    const wantPlain =
      (sim.map((row, i) => ceRow(row, i, 0)).reduce((x, y) => x + y, 0) / 3 + sim.map((_, j) => ceRow(sim.map((r) => r[j]!), j, 0)).reduce((x, y) => x + y, 0) / 3) / 2;
    expect(plain.loss.dataSync()[0]).toBeCloseTo(wantPlain, 4);
    tf.dispose([a, b, tempT, loss, logits, plain.loss, plain.logits]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('ITM hard negatives', () => {
  test('never the positive pair, for every batch size and many seeds', () => {
    const rng = seededRandom(123);
    for (let bsz = 2; bsz <= 7; bsz++) {
      for (let seed = 0; seed < 60; seed++) {
        // strongly diagonal similarities: the positive is by far the most similar
        const sim = Array.from({ length: bsz }, (_, i) => Array.from({ length: bsz }, (_, j) => (i === j ? 50 : rng() * 4)));
        const { negativeTextForImage, negativeImageForText } = sampleHardNegatives(sim, seed);
        expect(negativeTextForImage).toHaveLength(bsz);
        negativeTextForImage.forEach((k, i) => expect(k).not.toBe(i));
        negativeImageForText.forEach((k, j) => expect(k).not.toBe(j));
        [...negativeTextForImage, ...negativeImageForText].forEach((k) => expect(k >= 0 && k < bsz).toBe(true));
      }
    }
  });

  test('reproducible under a seed, different across seeds, and drawn from the ITC softmax', () => {
    const sim = [
      [5, 1, 4, 0],
      [2, 5, 0, 1],
      [0, 3, 5, 2],
      [1, 0, 2, 5],
    ];
    const t = tf.tensor2d(sim);
    const a = sampleHardNegatives(t, 42);
    expect(sampleHardNegatives(sim, 42)).toEqual(a); // tensor and array inputs, same seed
    const draws = Array.from({ length: 40 }, (_, s) => JSON.stringify(sampleHardNegatives(sim, s)));
    expect(new Set(draws).size).toBeGreaterThan(1);
    // image 0: texts 1, 2, 3 with weights e^1, e^4, e^0 → text 2 about 93% of the time
    let hits = 0;
    for (let s = 0; s < 400; s++) if (sampleHardNegatives(sim, s).negativeTextForImage[0] === 2) hits++;
    expect(hits / 400).toBeGreaterThan(0.85);
    expect(() => sampleHardNegatives([[1]], 0)).toThrow(/batch of at least 2, got 1/);
    t.dispose();
  });
});

describe('ITG', () => {
  test('decoder inputs: [DEC] replaces the first token; labels keep ids and are -100 on padding', () => {
    const ids = ids2d([
      [30, 7, 8, 9],
      [30, 5, 0, 0],
    ]);
    const mask = ids2d([
      [1, 1, 1, 1],
      [1, 1, 0, 0],
    ]);
    const { inputIds, labels } = itgDecoderInputs(ids, mask, { decoderStartTokenId: 49 });
    expect(inputIds.arraySync()).toEqual([
      [49, 7, 8, 9],
      [49, 5, 0, 0],
    ]);
    expect(labels.arraySync()).toEqual([
      [49, 7, 8, 9],
      [49, 5, -100, -100],
    ]);
    tf.dispose([ids, mask, inputIds, labels]);
  });

  test('the causal LM loss is shifted: logits at t predict label t+1, -100 skipped', () => {
    const logits = [
      [
        [0.1, 2, -1, 0.5],
        [1, 0, 0, 3],
        [0.3, 0.2, 0.1, 0],
      ],
    ]; // [1, 3, 4]
    const labels = [[0, 2, -100]];
    const l = tf.tensor3d(logits);
    const y = ids2d(labels);
    for (const eps of [0, 0.1]) {
      const got = causalLmLoss(l, y, { labelSmoothing: eps });
      // only position 0 has a target (labels[1] = 2); position 1's target is -100; position 2 has none
      expect(got.dataSync()[0]).toBeCloseTo(ceRow(logits[0]![0]!, 2, eps), 5);
      got.dispose();
    }
    // an unshifted loss would be a different number
    const unshifted = (ceRow(logits[0]![0]!, 0, 0) + ceRow(logits[0]![1]!, 2, 0)) / 2;
    const got = causalLmLoss(l, y);
    expect(Math.abs(got.dataSync()[0]! - unshifted)).toBeGreaterThan(0.1);
    tf.dispose([l, y, got]);
  });
});

describe('QFormerStage1', () => {
  const args = { ...TINY, numHiddenLayers: 2, embedDim: 16, seed: 3 };
  const batch = () => ({
    imageEmbeds: tf.randomNormal([3, 5, 24], 0, 1, 'float32', 7),
    inputIds: ids2d([
      [1, 7, 8, 9, 10],
      [1, 5, 6, 0, 0],
      [1, 11, 12, 13, 0],
    ]),
    attentionMask: ids2d([
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
      [1, 1, 1, 1, 0],
    ]),
  });

  test('one call returns {itc, itm, itg, total}; deterministic under a seed; ITC equals the separate query and text passes', () => {
    const model = new QFormerStage1(args);
    const inputs = batch();
    const before = tf.memory().numTensors;
    const a = model.losses({ ...inputs, seed: 11 });
    const b = model.losses({ ...inputs, seed: 11 });
    const v = (t: tf.Tensor) => t.dataSync()[0]!;
    for (const k of ['itc', 'itm', 'itg', 'total'] as const) {
      expect(a[k].shape).toEqual([]);
      expect(Number.isFinite(v(a[k]))).toBe(true);
      expect(v(b[k])).toBe(v(a[k]));
    }
    expect(v(a.total)).toBeCloseTo(v(a.itc) + v(a.itm) + v(a.itg), 5);

    // ITC of the one-pass 'itc' mode = LAVIS' two passes ('query' with the image, 'text' alone)
    const itc = tf.tidy(() => {
      const q = model.qformer.encode({ imageEmbeds: inputs.imageEmbeds, mode: 'query' }).queryOutput!;
      const t = model.qformer.encode({ inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, mode: 'text' }).lastHiddenState;
      const cls = tf.reshape(tf.slice(t, [0, 0, 0], [3, 1, 32]), [3, 32]);
      return itcLoss(model.visionProj.forward(q), model.textProj.forward(cls), model.temperature, { labelSmoothing: 0.1 }).loss;
    });
    expect(v(itc)).toBeCloseTo(v(a.itc), 5);
    tf.dispose([...Object.values(a), ...Object.values(b), itc]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(inputs));
    model.dispose();
  });

  test('gradients reach every head, the queries and the temperature, without leaking tensors; temperature is clamped', () => {
    const model = new QFormerStage1(args);
    const inputs = batch();
    model.temperature.assign(tf.scalar(0.9));
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => model.losses(inputs).total, model.parameters());
    expect(model.temperature.dataSync()[0]).toBeCloseTo(0.5, 6);
    const names = Object.fromEntries(model.namedParameters().map(([n, p]) => [p.name, n]));
    const reached = new Set(Object.keys(grads).map((k) => names[k]));
    for (const key of [
      'temp',
      'qformer.query_tokens',
      'vision_proj.weight',
      'text_proj.weight',
      'itm_head.weight',
      'cls.predictions.bias',
      'cls.predictions.transform.dense.weight',
      'qformer.embeddings.word_embeddings.weight',
      'qformer.encoder.layer.0.crossattention.attention.key.weight',
    ]) {
      expect(reached.has(key), key).toBe(true);
    }
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    // an optimizer step runs and changes the loss
    const opt = tf.train.adam(1e-2);
    const l0 = model.losses({ ...inputs, seed: 1 });
    opt.minimize(() => model.losses({ ...inputs, seed: 1 }).total, false, model.parameters());
    const l1 = model.losses({ ...inputs, seed: 1 });
    expect(l1.total.dataSync()[0]).not.toBe(l0.total.dataSync()[0]);
    tf.dispose([...Object.values(l0), ...Object.values(l1)]);
    opt.dispose();
    tf.dispose(Object.values(inputs));
    model.dispose();
  });

  test('state-dict keys follow LAVIS names; bad inputs are clear errors', () => {
    const model = new QFormerStage1(args);
    const keys = Object.keys(model.stateDictShapes());
    expect(keys).toEqual(expect.arrayContaining(['temp', 'vision_proj.weight', 'text_proj.bias', 'itm_head.weight', 'cls.predictions.bias', 'cls.predictions.transform.LayerNorm.weight', 'qformer.query_tokens']));
    expect(model.stateDictShapes()['cls.predictions.bias']).toEqual([50]);
    const one = tf.zeros([1, 5, 24]);
    const ids = ids2d([[1, 2, 3]]);
    expect(() => model.losses({ imageEmbeds: one, inputIds: ids })).toThrow(/batch of at least 2, got 1/);
    const wrong = tf.zeros([2, 5, 23]);
    expect(() => model.losses({ imageEmbeds: wrong, inputIds: ids })).toThrow(/imageEmbeds: expected shape \[batch, tokens, encoderHiddenSize=24\], got \[2, 5, 23\]/);
    tf.dispose([one, ids, wrong]);
    model.dispose();
  });
});
