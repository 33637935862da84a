import * as tf from '@tensorflow/tfjs-core';
import { expect, test } from 'vitest';
import { FeedForward, Linear, Module, countParameters, freeze, trainableVariables, unfreeze } from '@vlm/core';

class FrozenBackboneWithBridge extends Module {
  readonly backbone = this.registerModule('backbone', new FeedForward({ dim: 6, mult: 2 }));
  readonly bridge = this.registerModule('bridge', new Linear({ inFeatures: 6, outFeatures: 6 }));
  forward(x: tf.Tensor) {
    return tf.tidy(() => this.bridge.forward(this.backbone.forward(x)));
  }
}

test('a training step leaves a frozen module bit-identical and computes no gradient for it', () => {
  const model = new FrozenBackboneWithBridge();
  freeze(model.backbone);
  expect(countParameters(model)).toBe(6 * 12 + 12 + 12 * 6 + 6 + 6 * 6 + 6);
  expect(countParameters(model, { trainableOnly: true })).toBe(6 * 6 + 6);
  expect(trainableVariables(model)).toEqual(model.bridge.parameters());

  const snapshot = model.backbone.parameters().map((v) => v.dataSync().slice());
  const bridgeBefore = model.bridge.kernel.dataSync().slice();
  const x = tf.randomNormal([4, 6], 0, 1, 'float32', 1);
  const opt = tf.train.adam(0.1);
  const before = tf.memory().numTensors;
  // no variable list: the optimizer takes every trainable variable, i.e. not the frozen ones
  const { grads, value } = tf.variableGrads(() => tf.mean(tf.square(model.forward(x))) as tf.Scalar);
  const names = Object.keys(grads);
  expect(names.sort()).toEqual(model.bridge.parameters().map((v) => v.name).sort());
  opt.applyGradients(grads);
  tf.dispose([value, ...Object.values(grads)]);
  // the only tensors left are Adam's two slots per trainable weight
  expect(tf.memory().numTensors - before).toBe(2 * trainableVariables(model).length);
  model.backbone.parameters().forEach((v, i) => expect(v.dataSync()).toEqual(snapshot[i]));
  expect(model.bridge.kernel.dataSync()).not.toEqual(bridgeBefore);

  unfreeze(model.backbone);
  expect(countParameters(model, { trainableOnly: true })).toBe(countParameters(model));
  opt.dispose();
  x.dispose();
  model.dispose();
});
