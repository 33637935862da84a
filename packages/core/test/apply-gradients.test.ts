import * as tf from '@tensorflow/tfjs';
import { expect, test } from 'vitest';
import { Linear, applyGradients, trainableVariables } from '../src/index';

test('applyGradients takes tf.variableGrads output without a cast and steps the weights', () => {
  const layer = new Linear({ inFeatures: 3, outFeatures: 2 });
  const x = tf.ones([4, 3]);
  const optimizer = tf.train.sgd(0.1); // a concrete optimizer: its own applyGradients wants a NamedVariableMap
  const before = Array.from(layer.kernel.dataSync());
  const start = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => tf.sum(layer.forward(x)) as tf.Scalar, trainableVariables(layer));
  applyGradients(optimizer, grads);
  tf.dispose([value, ...Object.values(grads)]);
  expect(tf.memory().numTensors).toBe(start);
  // d sum(x W^T + b) / d W = sum over the 4 rows of x = 4 everywhere
  Array.from(layer.kernel.dataSync()).forEach((w, i) => expect(w).toBeCloseTo(before[i]! - 0.4, 5));
  tf.dispose(x);
  layer.dispose();
  optimizer.dispose();
});

test('applyGradients: unknown names and wrong shapes are listed, and no weight changes', () => {
  const layer = new Linear({ inFeatures: 3, outFeatures: 2 });
  const optimizer = tf.train.sgd(0.1);
  const before = Array.from(layer.kernel.dataSync());
  const g = { [layer.kernel.name]: tf.ones([2, 3]), nope: tf.ones([1]) };
  expect(() => applyGradients(optimizer, g)).toThrow(/gradient \[2,3\] for a variable \[3,2\]; 'nope' is not a registered variable/);
  expect(Array.from(layer.kernel.dataSync())).toEqual(before);
  tf.dispose(Object.values(g));
  layer.dispose();
  optimizer.dispose();
});
