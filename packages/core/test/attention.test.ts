import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { CrossAttention, MASK_VALUE, MultiHeadAttention, blockMask, causalMask, paddingMask, scaledDotProductAttention } from '@vlm/core';

type M = number[][];
const matmulT = (a: M, w: M, b?: number[]) => a.map((row) => w.map((wr, o) => wr.reduce((s, wi, i) => s + wi * row[i]!, b ? b[o]! : 0)));

// torch.nn.MultiheadAttention(batch_first=True) for one batch element, written out by hand.
function referenceMha(q: M, k: M, v: M, sd: Record<string, number[] | M>, heads: number, disallowed?: boolean[][]): M {
  const E = q[0]!.length;
  const W = sd.in_proj_weight as M;
  const B = sd.in_proj_bias as number[];
  const qp = matmulT(q, W.slice(0, E), B.slice(0, E));
  const kp = matmulT(k, W.slice(E, 2 * E), B.slice(E, 2 * E));
  const vp = matmulT(v, W.slice(2 * E), B.slice(2 * E));
  const d = E / heads;
  const out = q.map(() => new Array<number>(E).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < q.length; i++) {
      const logits = kp.map((kr, j) => {
        if (disallowed?.[i]?.[j]) return -Infinity;
        let s = 0;
        for (let c = 0; c < d; c++) s += (qp[i]![h * d + c]! / Math.sqrt(d)) * kr[h * d + c]!;
        return s;
      });
      const mx = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < k.length; j++) for (let c = 0; c < d; c++) out[i]![h * d + c]! += (e[j]! / z) * vp[j]![h * d + c]!;
    }
  }
  return matmulT(out, sd['out_proj.weight'] as M, sd['out_proj.bias'] as number[]);
}

function expectClose(actual: tf.Tensor | number[][], expected: number[][], atol = 1e-5) {
  const a = Array.isArray(actual) ? actual : (actual.arraySync() as number[][]);
  expected.forEach((row, i) => row.forEach((x, j) => expect(Math.abs(a[i]![j]! - x)).toBeLessThanOrEqual(atol)));
}

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

describe('MultiHeadAttention (torch.nn.MultiheadAttention semantics)', () => {
  test('matches a hand-written reference, with and without a boolean attn_mask', () => {
    const before = tf.memory().numTensors;
    const mha = new MultiHeadAttention({ embedDim: 8, numHeads: 2 });
    tf.tidy(() => {
      // non-zero biases so bias bugs show
      const sdT = mha.stateDict();
      mha.loadStateDict({ ...sdT, in_proj_bias: rand([24], 3), 'out_proj.bias': tf.mul(rand([8], 4), 0.5) });
      const sd = Object.fromEntries(Object.entries(mha.stateDict()).map(([k, t]) => [k, t.arraySync() as number[] | M]));
      const q = rand([1, 3, 8], 1);
      const kv = rand([1, 5, 8], 2);
      const qa = (q.arraySync() as M[])[0]!;
      const ka = (kv.arraySync() as M[])[0]!;
      expectClose((mha.forward(q, kv, kv).arraySync() as M[])[0]!, referenceMha(qa, ka, ka, sd, 2));
      // torch bool attn_mask: True = NOT allowed
      const dis = [[false, true, false, true, false], [true, true, true, true, false], [false, false, false, false, false]];
      const m = tf.tensor2d(dis, undefined, 'bool');
      expectClose((mha.forward(q, kv, kv, { attnMask: m }).arraySync() as M[])[0]!, referenceMha(qa, ka, ka, sd, 2, dis));
      // the same mask as an additive float mask
      const add = tf.where(m, tf.scalar(MASK_VALUE), tf.scalar(0));
      expectClose((mha.forward(q, kv, kv, { attnMask: add }).arraySync() as M[])[0]!, referenceMha(qa, ka, ka, sd, 2, dis));
      // per-(batch·head) masks [b·h, n, s]
      const perHead = tf.stack([m, tf.zerosLike(m)]);
      expect(mha.forward(q, kv, kv, { attnMask: perHead }).shape).toEqual([1, 3, 8]);
    });
    mha.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('an all-false padding mask equals no mask; padded keys do not change the result', () => {
    tf.tidy(() => {
      const mha = new MultiHeadAttention({ embedDim: 8, numHeads: 4 });
      const q = rand([2, 3, 8], 5);
      const kv = rand([2, 6, 8], 6);
      const none = mha.forward(q, kv, kv);
      const allReal = mha.forward(q, kv, kv, { keyPaddingMask: tf.zeros([2, 6], 'bool') });
      expect(tf.max(tf.abs(tf.sub(none, allReal))).dataSync()[0]).toBe(0);
      // row 1 has 2 padded keys whose values are garbage: result = running on the 4 real keys alone
      const garbage = tf.concat([tf.slice(kv, [0, 0, 0], [2, 4, 8]), tf.mul(rand([2, 2, 8], 7), 100)], 1);
      const pad = tf.tensor2d([[false, false, false, false, false, false], [false, false, false, false, true, true]], undefined, 'bool');
      const padded = mha.forward(q, garbage, garbage, { keyPaddingMask: pad });
      const alone = mha.forward(tf.slice(q, [1, 0, 0], [1, 3, 8]), tf.slice(kv, [1, 0, 0], [1, 4, 8]), tf.slice(kv, [1, 0, 0], [1, 4, 8]));
      expectClose((padded.arraySync() as M[])[1]!, (alone.arraySync() as M[])[0]!);
      mha.dispose();
    });
  });

  test('kdim / vdim use separate q_proj_weight, k_proj_weight, v_proj_weight', () => {
    const mha = new MultiHeadAttention({ embedDim: 8, numHeads: 2, kdim: 5, vdim: 3 });
    expect(mha.stateDictShapes()).toEqual({
      q_proj_weight: [8, 8],
      k_proj_weight: [8, 5],
      v_proj_weight: [8, 3],
      in_proj_bias: [24],
      'out_proj.weight': [8, 8],
      'out_proj.bias': [8],
    });
    const out = tf.tidy(() => mha.forward(tf.ones([2, 4, 8]), tf.ones([2, 7, 5]), tf.ones([2, 7, 3])));
    expect(out.shape).toEqual([2, 4, 8]);
    out.dispose();
    expect(() => mha.forward(tf.ones([2, 4, 8]), tf.ones([2, 7, 8]), tf.ones([2, 7, 3]))).toThrow(
      /MultiHeadAttention key: expected shape \[batch=2, keys, kdim=5\], got \[2, 7, 8\]/,
    );
    expect(() => mha.forward(tf.ones([2, 4, 8]), tf.ones([2, 7, 5]), tf.ones([2, 7, 3]), { keyPaddingMask: tf.zeros([2, 6], 'bool') })).toThrow(
      /keyPaddingMask: expected shape \[batch=2, keys=7\], got \[2, 6\]/,
    );
    mha.dispose();
  });

  test('forward and gradients leak no tensor; gradients match finite differences', () => {
    const mha = new MultiHeadAttention({ embedDim: 4, numHeads: 2 });
    const q = rand([1, 2, 4], 8);
    const kv = rand([1, 3, 4], 9);
    const w = rand([1, 2, 4], 10);
    const before = tf.memory().numTensors;
    const loss = () => tf.sum(tf.mul(mha.forward(q, kv, kv), w)) as tf.Scalar;
    const { value, grads } = tf.variableGrads(loss, mha.parameters());
    const gq = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(mha.forward(x, kv, kv), w)))(q);
    // finite differences on one query element
    const eps = 1e-2;
    const bump = (s: number) => tf.tidy(() => tf.sum(tf.mul(mha.forward(tf.add(q, tf.mul(tf.oneHot([1], 4).reshape([1, 1, 4]).pad([[0, 0], [1, 0], [0, 0]]), s)), kv, kv), w)).dataSync()[0]!);
    const fd = (bump(eps) - bump(-eps)) / (2 * eps);
    expect(Math.abs(fd - (gq.arraySync() as number[][][])[0]![1]![1]!)).toBeLessThan(2e-3);
    expect(Object.keys(grads)).toHaveLength(4);
    tf.dispose([value, gq, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, kv, w]);
    mha.dispose();
  });
});

describe('scaledDotProductAttention and masks', () => {
  test('an all-true allowed mask equals no mask; a fully masked row averages values (no NaN)', () => {
    tf.tidy(() => {
      const q = rand([2, 3, 8], 11), k = rand([2, 4, 8], 12), v = rand([2, 4, 8], 13);
      const plain = scaledDotProductAttention(q, k, v, { heads: 2 });
      const masked = scaledDotProductAttention(q, k, v, { heads: 2, allowed: tf.ones([2, 1, 3, 4], 'bool') });
      expect(tf.max(tf.abs(tf.sub(plain, masked))).dataSync()[0]).toBe(0);
      const none = scaledDotProductAttention(q, k, v, { heads: 1, allowed: tf.zeros([1, 1, 1, 4], 'bool') });
      expectClose((none.arraySync() as M[])[0]!, [0, 1, 2].map(() => (tf.mean(v, 1).arraySync() as M)[0]!));
      // huge logits stay finite: the softmax subtracts the row max
      const big = scaledDotProductAttention(tf.mul(q, 1e4), k, v, { heads: 2 });
      expect(tf.all(tf.isFinite(big)).dataSync()[0]).toBe(1);
    });
  });

  test('causal, padding and block masks', () => {
    tf.tidy(() => {
      expect(causalMask(3).arraySync()).toEqual([[1, 0, 0], [1, 1, 0], [1, 1, 1]]);
      expect(causalMask(1, 3).arraySync()).toEqual([[1, 1, 1]]); // one new token after 2 cached
      expect(paddingMask(tf.tensor2d([[1, 1, 0]], undefined, 'int32')).arraySync()).toEqual([[[[1, 1, 0]]]]);
      expect(blockMask([2, 1]).arraySync()).toEqual([[1, 1, 0], [1, 1, 0], [0, 0, 1]]);
      expect(() => paddingMask(tf.ones([3]))).toThrow(/expected attentionMask of shape \[batch, keys\], got \[3\]/);
    });
  });

  test('CrossAttention: bias-free to_q / to_kv / to_out', () => {
    const attn = new CrossAttention({ dim: 8, contextDim: 6, dimHead: 3, heads: 2 });
    expect(attn.stateDictShapes()).toEqual({ 'to_q.weight': [6, 8], 'to_kv.weight': [12, 6], 'to_out.weight': [8, 6] });
    const out = tf.tidy(() => attn.forward(tf.ones([2, 5, 8]), tf.ones([2, 7, 6])));
    expect(out.shape).toEqual([2, 5, 8]);
    expect(() => attn.forward(tf.ones([2, 5, 8]), tf.ones([3, 7, 6]))).toThrow(/CrossAttention context: expected shape \[batch=2, m, contextDim=6\], got \[3, 7, 6\]/);
    out.dispose();
    attn.dispose();
  });
});
