import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { QFormer, QFormerStage1, type QFormerMode } from '@vlm/qformer';
import { TINY, ids2d } from './helpers';

// numFrames: each frame of imageEmbeds is read by its own copy of the queries. The reference is
// the Q-Former run on each frame alone (query outputs), and for the text positions the encoder
// run with masks written out here by hand.

const F = 3;
const Q = TINY.numQueryTokens!; // 8
const M1 = 5; // tokens per frame
const b = 2;

function frames(seed: number): tf.Tensor3D {
  return tf.randomNormal([b, F * M1, TINY.encoderHiddenSize!], 0, 1, 'float32', seed) as tf.Tensor3D;
}
/** Frame f of every row: `[b, M1, E]`. */
const frameOf = (x: tf.Tensor, f: number) => tf.slice(x, [0, f * M1, 0], [-1, M1, -1]);
const maxDiff = (a: tf.Tensor, c: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]!);

/** The query outputs of every frame run alone, side by side: `[b, F·Q, H]`. */
function framesAlone(q: QFormer, x: tf.Tensor, key: 'queryOutput' | 'projected' = 'queryOutput', mask?: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    tf.concat(
      Array.from({ length: F }, (_, f) => {
        const out = q.encode({ imageEmbeds: frameOf(x, f), mode: 'query', imageAttentionMask: mask ? tf.slice(mask, [0, f * M1], [-1, M1]) : undefined });
        return out[key]!;
      }),
      1,
    ),
  );
}

/** Hand-written self-attention mask (additive `[b, 1, L, L]`) of a framed pass, text padding `pad`. */
function handSelfMask(mode: QFormerMode, pad: number[][], P = F * Q, G = Q): tf.Tensor {
  const T = pad[0]!.length;
  const L = P + T;
  const rows = pad.map((p) =>
    Array.from({ length: L }, (_, i) =>
      Array.from({ length: L }, (_, j) => {
        const qi = i < P;
        const qj = j < P;
        if (!qj && p[j - P] === 0) return -10000; // padded text key
        if (qi && qj) return Math.floor(i / G) === Math.floor(j / G) ? 0 : -10000; // a group sees only itself
        if (mode === 'itm') return 0;
        if (qi) return -10000; // itg: queries never see text
        return qj || j <= i ? 0 : -10000; // itg: text sees every query and earlier text
      }),
    ),
  );
  return tf.tensor4d(rows.map((r) => [r]));
}

/** Hand-written cross-attention mask (additive `[1, 1, F·Q, F·M1]`): copy f sees frame f. */
function handImageMask(P = F * Q, G = Q): tf.Tensor {
  const m = Array.from({ length: P }, (_, i) => Array.from({ length: F * M1 }, (_, j) => (Math.floor(i / G) === Math.floor(j / M1) ? 0 : -10000)));
  return tf.tensor4d([[m]]);
}

describe('QFormer numFrames', () => {
  let qformer: QFormer;
  beforeAll(() => {
    qformer = new QFormer({ ...TINY, llmHiddenSize: 12 });
  });

  test("mode 'query': equals the Q-Former on each frame alone, outputs side by side (projected too); numTensors unchanged", () => {
    const x = frames(1);
    const before = tf.memory().numTensors;
    const out = qformer.encode({ imageEmbeds: x, mode: 'query', numFrames: F });
    expect(out.queryOutput!.shape).toEqual([b, F * Q, TINY.hiddenSize]);
    expect(qformer.numQueryPositions(F)).toBe(F * Q);
    expect(out.projected!.shape).toEqual([b, F * Q, 12]);
    const wantQ = framesAlone(qformer, x);
    const wantP = framesAlone(qformer, x, 'projected');
    expect(maxDiff(out.queryOutput!, wantQ)).toBeLessThan(1e-5);
    expect(maxDiff(out.lastHiddenState, wantQ)).toBeLessThan(1e-5);
    expect(maxDiff(out.projected!, wantP)).toBeLessThan(1e-5);
    // one frame of the three differs from the single-frame pass over all tokens
    const joint = qformer.encode({ imageEmbeds: x, mode: 'query' });
    expect(tf.tidy(() => maxDiff(tf.slice(out.queryOutput!, [0, 0, 0], [-1, Q, -1]), joint.queryOutput!))).toBeGreaterThan(1e-3);
    tf.dispose([wantQ, wantP, ...Object.values(out), ...Object.values(joint)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  test('image padding masks keys inside each frame as it would for the frame alone', () => {
    const x = frames(2);
    const mask = tf.tensor2d([Array.from({ length: F * M1 }, (_, j) => (j % M1 === 4 ? 0 : 1)), Array.from({ length: F * M1 }, (_, j) => (j === M1 ? 0 : 1))], undefined, 'int32');
    const out = qformer.encode({ imageEmbeds: x, mode: 'query', numFrames: F, imageAttentionMask: mask });
    const want = framesAlone(qformer, x, 'queryOutput', mask);
    expect(maxDiff(out.queryOutput!, want)).toBeLessThan(1e-5);
    // the same masks through the text-mode path (itc: queries see only queries) give the same query outputs
    const ids = ids2d([[1, 5, 9], [1, 7, 0]]);
    const itc = qformer.encode({ imageEmbeds: x, inputIds: ids, mode: 'itc', numFrames: F, imageAttentionMask: mask });
    expect(maxDiff(itc.queryOutput!, want)).toBeLessThan(1e-5);
    tf.dispose([x, mask, want, ids, ...Object.values(out), ...Object.values(itc)]);
  });

  test("mode 'itc': the query copies equal each frame alone and the text equals mode 'text'", () => {
    const x = frames(3);
    const ids = ids2d([[1, 5, 9, 2], [1, 7, 0, 0]]);
    const mask = tf.tensor2d([[1, 1, 1, 1], [1, 1, 0, 0]], undefined, 'int32');
    const out = qformer.encode({ imageEmbeds: x, inputIds: ids, attentionMask: mask, mode: 'itc', numFrames: F });
    expect(out.lastHiddenState.shape).toEqual([b, F * Q + 4, TINY.hiddenSize]);
    const wantQ = framesAlone(qformer, x);
    const wantT = qformer.encode({ inputIds: ids, attentionMask: mask, mode: 'text' }).lastHiddenState;
    expect(maxDiff(out.queryOutput!, wantQ)).toBeLessThan(1e-5);
    expect(maxDiff(tf.slice(out.lastHiddenState, [0, F * Q, 0], [-1, 4, -1]), wantT)).toBeLessThan(1e-5);
    tf.dispose([x, ids, mask, wantQ, wantT, ...Object.values(out)]);
  });

  for (const mode of ['itm', 'itg'] as const) {
    test(`mode '${mode}': equals the encoder under hand-written masks (copies apart, text as the mode allows)`, () => {
      const x = frames(4);
      const pad = [[1, 1, 1, 1], [1, 1, 1, 0]];
      const ids = ids2d([[1, 5, 9, 2], [1, 7, 3, 0]]);
      const mask = tf.tensor2d(pad, undefined, 'int32');
      const out = qformer.encode({ imageEmbeds: x, inputIds: ids, attentionMask: mask, mode, numFrames: F });
      const want = tf.tidy(() => {
        const emb = tf.concat([tf.tile(qformer.queryTokens, [b, F, 1]), qformer.embeddings!.forward(ids)], 1);
        return qformer.encoder.forward(qformer.layernorm.forward(emb), handSelfMask(mode, pad), F * Q, x, handImageMask());
      });
      expect(maxDiff(out.lastHiddenState, want)).toBeLessThan(1e-5);
      if (mode === 'itg') expect(maxDiff(out.queryOutput!, framesAlone(qformer, x))).toBeLessThan(1e-5); // queries never see text
      tf.dispose([x, ids, mask, want, ...Object.values(out)]);
    });
  }

  test('errors: numFrames not a positive integer, or not dividing the image tokens', () => {
    const x = frames(5);
    expect(() => qformer.encode({ imageEmbeds: x, numFrames: 0 })).toThrow(/numFrames must be a positive integer, got 0/);
    expect(() => qformer.encode({ imageEmbeds: x, numFrames: 1.5 })).toThrow(/numFrames must be a positive integer, got 1.5/);
    expect(() => qformer.encode({ imageEmbeds: x, numFrames: 4 })).toThrow(/15 tokens, not a whole number of tokens for each of numFrames 4 frames/);
    x.dispose();
  });
});

describe('QFormer numFrames with splitQueries', () => {
  // 12 queries over 3 frames: group f = queries 4f … 4f+3 reads frame f
  const args = { ...TINY, numQueryTokens: 12, llmHiddenSize: 12 };
  const G = 4;
  let qformer: QFormer;
  beforeAll(() => {
    qformer = new QFormer(args);
  });

  test("mode 'query': group f equals a Q-Former holding only those queries, run on frame f alone; numTensors unchanged", () => {
    const x = frames(7);
    const before = tf.memory().numTensors;
    const out = qformer.encode({ imageEmbeds: x, mode: 'query', numFrames: F, splitQueries: true });
    expect(out.queryOutput!.shape).toEqual([b, 12, TINY.hiddenSize]);
    expect(qformer.numQueryPositions(F, true)).toBe(12);
    expect(out.projected!.shape).toEqual([b, 12, 12]);
    const state = qformer.stateDict();
    for (let f = 0; f < F; f++) {
      const part = new QFormer({ ...args, numQueryTokens: G });
      const mine = tf.slice(state.query_tokens!, [0, f * G, 0], [1, G, -1]);
      part.loadStateDict({ ...state, query_tokens: mine });
      mine.dispose();
      const frame = frameOf(x, f);
      const want = part.encode({ imageEmbeds: frame, mode: 'query' });
      frame.dispose();
      expect(tf.tidy(() => maxDiff(tf.slice(out.projected!, [0, f * G, 0], [-1, G, -1]), want.projected!))).toBeLessThan(1e-5);
      tf.dispose(Object.values(want));
      part.dispose();
    }
    tf.dispose([...Object.values(state), ...Object.values(out)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  test("mode 'itg': equals the encoder under hand-written masks (groups apart, text sees every query)", () => {
    const x = frames(8);
    const pad = [[1, 1, 1, 1], [1, 1, 0, 0]];
    const ids = ids2d([[1, 5, 9, 2], [1, 7, 0, 0]]);
    const mask = tf.tensor2d(pad, undefined, 'int32');
    const out = qformer.encode({ imageEmbeds: x, inputIds: ids, attentionMask: mask, mode: 'itg', numFrames: F, splitQueries: true });
    const want = tf.tidy(() => {
      const emb = tf.concat([tf.tile(qformer.queryTokens, [b, 1, 1]), qformer.embeddings!.forward(ids)], 1);
      return qformer.encoder.forward(qformer.layernorm.forward(emb), handSelfMask('itg', pad, 12, G), 12, x, handImageMask(12, G));
    });
    expect(maxDiff(out.lastHiddenState, want)).toBeLessThan(1e-5);
    tf.dispose([x, ids, mask, want, ...Object.values(out)]);
  });

  test('errors: the queries must split evenly among the frames', () => {
    const x = tf.zeros([1, 10, TINY.encoderHiddenSize!]);
    expect(() => qformer.encode({ imageEmbeds: x, numFrames: 5, splitQueries: true })).toThrow(/splitQueries needs numQueryTokens \(12\) to be a multiple of numFrames \(5\)/);
    x.dispose();
  });
});

describe('QFormerStage1 numFrames', () => {
  test('ITC + ITM + ITG over the frames: finite losses and gradients for every weight, numTensors unchanged; errors', () => {
    const stage1 = new QFormerStage1({ ...TINY, embedDim: 16 });
    const x = frames(6);
    const ids = ids2d([[1, 5, 9, 2], [1, 7, 3, 0]]);
    const mask = tf.tensor2d([[1, 1, 1, 1], [1, 1, 1, 0]], undefined, 'int32');
    const before = tf.memory().numTensors;
    const named = [...stage1.namedParameters()];
    const vars = named.map(([, v]) => v);
    const { value, grads } = tf.variableGrads(() => stage1.losses({ imageEmbeds: x, inputIds: ids, attentionMask: mask, numFrames: F, seed: 0 }).total, vars);
    expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
    // the frames change the losses (the query copies read different tokens than one pass over all)
    const joint = tf.tidy(() => stage1.losses({ imageEmbeds: x, inputIds: ids, attentionMask: mask, seed: 0 }).total);
    expect(Math.abs(joint.dataSync()[0]! - value.dataSync()[0]!)).toBeGreaterThan(1e-4);
    for (const [name, g] of Object.entries(grads)) expect(Number.isFinite(tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!)), name).toBe(true);
    const queryGrad = grads[named.find(([k]) => k.endsWith('query_tokens'))![1].name]!;
    expect(tf.tidy(() => tf.sum(tf.abs(queryGrad)).dataSync()[0]!)).toBeGreaterThan(0);
    tf.dispose([value, joint, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => stage1.losses({ imageEmbeds: x, inputIds: ids, numFrames: 2 })).toThrow(/numFrames must be a positive integer that divides the 15 image tokens, got 2/);
    tf.dispose([x, ids, mask]);
    stage1.dispose();
  });

  test('with splitQueries: finite losses that differ from the copies, numTensors unchanged', () => {
    const stage1 = new QFormerStage1({ ...TINY, numQueryTokens: 6, embedDim: 16 });
    const x = frames(9);
    const ids = ids2d([[1, 5, 9, 2], [1, 7, 3, 0]]);
    const before = tf.memory().numTensors;
    const [split, copies] = tf.tidy(() => [true, false].map((splitQueries) => stage1.losses({ imageEmbeds: x, inputIds: ids, numFrames: F, splitQueries, seed: 0 }).total.dataSync()[0]!));
    expect(Number.isFinite(split!)).toBe(true);
    expect(Math.abs(split! - copies!)).toBeGreaterThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ids]);
    stage1.dispose();
  });
});
