import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { LayersModelEncoder } from '../src/vision/index';

/**
 * pad → conv(no bias, stride 2) → BN → ReLU(6) → depthwise(×2, bias) → BN(no γ, no β) → relu
 * ↘ conv 1×1 with its own relu (no BN) ↗ add → dropout → conv(dilation 2) → BN(no γ) → ReLU(max 3)
 * → conv 1×1 → BN → add(conv, BN) (the conv is read twice: not folded).
 */
function testCnn(): tfl.LayersModel {
  const input = tfl.input({ shape: [12, 12, 3], name: 'image' });
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => layer.apply(x) as tfl.SymbolicTensor;
  const pad = apply(tfl.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: 'pad' }), input);
  const c1 = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'c1' }), pad);
  const bn1 = apply(tfl.layers.batchNormalization({ epsilon: 1e-3, name: 'bn1' }), c1);
  const r1 = apply(tfl.layers.reLU({ maxValue: 6, name: 'r1' }), bn1);
  const dw = apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: true, name: 'dw' }), r1);
  const bn2 = apply(tfl.layers.batchNormalization({ center: false, scale: false, name: 'bn2' }), dw);
  const a2 = apply(tfl.layers.activation({ activation: 'relu', name: 'a2' }), bn2);
  const c3 = apply(tfl.layers.conv2d({ filters: 16, kernelSize: 1, activation: 'relu', name: 'c3' }), r1);
  const add = apply(tfl.layers.add({ name: 'add' }), [a2, c3]);
  const drop = apply(tfl.layers.dropout({ rate: 0.5, name: 'drop' }), add);
  const c4 = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', dilationRate: 2, name: 'c4' }), drop);
  const bn4 = apply(tfl.layers.batchNormalization({ scale: false, epsilon: 1e-2, name: 'bn4' }), c4);
  const r4 = apply(tfl.layers.reLU({ maxValue: 3, name: 'r4' }), bn4);
  const c5 = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'c5' }), r4);
  const bn5 = apply(tfl.layers.batchNormalization({ name: 'bn5' }), c5);
  const out = apply(tfl.layers.add({ name: 'out' }), [c5, bn5]);
  const model = tfl.model({ inputs: input, outputs: out, name: 'test_cnn' });
  // Batch norms with statistics far from the identity, and biases that matter.
  let seed = 100;
  for (const layer of model.layers) {
    const isBn = layer.getClassName() === 'BatchNormalization';
    layer.setWeights(
      layer.weights.map((w) => {
        seed += 1;
        const variance = w.originalName.endsWith('moving_variance');
        const gamma = w.originalName.endsWith('gamma'); // large enough that ReLU6 clips at 6
        const [lo, hi] = variance ? [0.2, 3] : gamma ? [-8, 8] : [-2, 2];
        return isBn ? tf.randomUniform(w.shape, lo, hi, 'float32', seed) : tf.randomNormal(w.shape, 0, 0.5, 'float32', seed);
      }),
    );
  }
  return model;
}

/** max |a − b| / max |b|. */
const relativeDifference = (a: tf.Tensor, b: tf.Tensor) =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / tf.max(tf.abs(b)).dataSync()[0]!);

describe('LayersModelEncoder: batch norm folded into the convolutions (foldBatchNorm)', () => {
  test('folded encode equals the unfolded one at every cut; what cannot be folded runs as its layer', () => {
    const model = testCnn();
    const x = tf.randomUniform([3, 12, 12, 3], 0, 1, 'float32', 7);
    // cut → batch norms folded: bn1 (+ReLU6), bn2 (+relu), bn4 (its ReLU(max 3) runs alone); never bn5 (c5 is read twice)
    const cuts: Array<[string, number]> = [['out', 3], ['r4', 3], ['bn4', 3], ['add', 2], ['a2', 2], ['bn2', 2], ['r1', 1], ['bn1', 1], ['c1', 0]];
    for (const [layer, folded] of cuts) {
      const before = tf.memory().numTensors;
      const fast = new LayersModelEncoder(model, { layer, ownsModel: false });
      const slow = new LayersModelEncoder(model, { layer, ownsModel: false, foldBatchNorm: false });
      expect(fast.foldedBatchNorms, layer).toBe(folded);
      expect(slow.foldedBatchNorms).toBe(0);
      const mid = tf.memory().numTensors;
      const got = fast.encode(x);
      const want = slow.encode(x);
      expect(got.shape).toEqual(want.shape);
      expect(tf.tidy(() => tf.max(tf.abs(want)).dataSync()[0]!), layer).toBeGreaterThan(0.1);
      expect(relativeDifference(got, want), layer).toBeLessThan(1e-5);
      tf.dispose([got, want]);
      expect(tf.memory().numTensors, `${layer}: encode leaves nothing`).toBe(mid);
      fast.dispose();
      slow.dispose();
      expect(tf.memory().numTensors, `${layer}: dispose frees the folded weights`).toBe(before);
    }
    x.dispose();
    model.dispose();
  });

  test('the folded weights are W·γ/√(σ²+ε) and β + (b − μ)·γ/√(σ²+ε): one changed statistic changes the tokens as the batch norm does', () => {
    const model = testCnn();
    const x = tf.randomUniform([2, 12, 12, 3], 0, 1, 'float32', 8);
    const bn1 = model.getLayer('bn1');
    // A large moving mean on channel 0 drives it below 0 → ReLU6 clips it: both paths must agree.
    const [gamma, beta, mean, variance] = bn1.getWeights();
    const shifted = tf.tidy(() => tf.add(mean!, tf.mul(tf.reshape(tf.oneHot([0], 8), [8]), 100)));
    bn1.setWeights([gamma!, beta!, shifted, variance!]);
    const fast = new LayersModelEncoder(model, { layer: 'r1', ownsModel: false });
    const slow = new LayersModelEncoder(model, { layer: 'r1', ownsModel: false, foldBatchNorm: false });
    const got = fast.encode(x);
    const want = slow.encode(x);
    const channel0 = tf.tidy(() => tf.max(tf.slice(want, [0, 0, 0], [-1, -1, 1])).dataSync()[0]);
    expect(channel0).toBe(0);
    expect(tf.tidy(() => tf.max(want).dataSync()[0]), 'ReLU6 clips').toBe(6);
    expect(relativeDifference(got, want)).toBeLessThan(1e-5);
    tf.dispose([got, want, shifted, x]);
    fast.dispose();
    slow.dispose();
    model.dispose();
  });

  test('more than 32 images run in batches of 32 (as predict); a wrong input shape is a clear error', () => {
    const model = testCnn();
    const fast = new LayersModelEncoder(model, { layer: 'out', pool: 2, ownsModel: false });
    const slow = new LayersModelEncoder(model, { layer: 'out', pool: 2, ownsModel: false, foldBatchNorm: false });
    const x = tf.randomUniform([35, 12, 12, 3], 0, 1, 'float32', 9);
    const before = tf.memory().numTensors;
    const got = fast.encode(x);
    const want = slow.encode(x);
    expect(got.shape).toEqual([35, 9, 8]);
    expect(relativeDifference(got, want)).toBeLessThan(1e-5);
    tf.dispose([got, want]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => fast.encode(tf.zeros([1, 10, 12, 3]))).toThrow(/expected pixels \[b,12,12,3\] \(b ≥ 1\), got \[1,10,12,3\]/);
    expect(() => fast.encode(tf.zeros([12, 12, 3]))).toThrow(/expected pixels \[b,12,12,3\]/);
    tf.dispose(x);
    fast.dispose();
    slow.dispose();
    model.dispose();
  });

  test("a ZeroPadding2D before a 'valid' convolution: folded into it where it pads as 'same', a layer of its own where not", () => {
    for (const [padding, strides] of [[[[0, 1], [0, 1]], 2], [[[1, 0], [0, 1]], 2], [[[1, 1], [1, 1]], 1], [[[2, 0], [1, 1]], 1]] as const) {
      const input = tfl.input({ shape: [10, 10, 4] });
      const pad = tfl.layers.zeroPadding2d({ padding: padding as [[number, number], [number, number]] }).apply(input) as tfl.SymbolicTensor;
      const dw = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides, useBias: false }).apply(pad) as tfl.SymbolicTensor;
      const bn = tfl.layers.batchNormalization({ name: 'bn_pad' }).apply(dw) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: input, outputs: bn });
      model.layers[3]!.setWeights(model.layers[3]!.weights.map((w, i) => tf.randomUniform(w.shape, 0.5, 2, 'float32', i)));
      const x = tf.randomUniform([2, 10, 10, 4], -1, 1, 'float32', 3);
      const fast = new LayersModelEncoder(model, { layer: 'bn_pad', ownsModel: false });
      const slow = new LayersModelEncoder(model, { layer: 'bn_pad', ownsModel: false, foldBatchNorm: false });
      expect(fast.foldedBatchNorms).toBe(1);
      const [got, want] = [fast.encode(x), slow.encode(x)];
      expect(got.shape, JSON.stringify(padding)).toEqual(want.shape);
      expect(relativeDifference(got, want), JSON.stringify(padding)).toBeLessThan(1e-5);
      tf.dispose([got, want, x]);
      fast.dispose();
      slow.dispose();
      model.dispose();
    }
  });

  test('channels-first convolutions and batch norms over another axis run as their layers (folding nothing: predict)', () => {
    const input = tfl.input({ shape: [4, 6, 6], name: 'image_cf' });
    const c = tfl.layers.conv2d({ filters: 3, kernelSize: 3, dataFormat: 'channelsFirst', padding: 'same', name: 'c_cf' }).apply(input) as tfl.SymbolicTensor;
    const bn = tfl.layers.batchNormalization({ axis: 1, name: 'bn_cf' }).apply(c) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: bn });
    const enc = new LayersModelEncoder(model, { layer: 'bn_cf' });
    expect(enc.foldedBatchNorms).toBe(0);
    enc.dispose();
  });
});
