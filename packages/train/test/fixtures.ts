// A small model and data set shared by the @vlm/train tests.
import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Linear, Module, manualSeed } from '@vlm/core';
import { tensorDataset } from '@vlm/train';

/** Linear → LayerNorm → GELU-free tanh → Linear, with a scalar gate: every kind of weight a bridge has. */
export class TinyNet extends Module {
  readonly fc1: Linear;
  readonly norm: LayerNorm;
  readonly fc2: Linear;
  constructor(seed = 0) {
    super();
    manualSeed(seed);
    this.fc1 = this.registerModule('fc1', new Linear({ inFeatures: 6, outFeatures: 8 }));
    this.norm = this.registerModule('norm', new LayerNorm({ dim: 8 }));
    this.fc2 = this.registerModule('fc2', new Linear({ inFeatures: 8, outFeatures: 3 }));
    this.registerParameter('gate', tf.tensor1d([0.5]));
    manualSeed(null);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.mul(this.fc2.forward(tf.tanh(this.norm.forward(this.fc1.forward(x)))), tf.tanh(this.parameter('gate'))));
  }
}

/** 20 examples: x [20, 6], y [20, 3] (seeded). */
export function tinyData(n = 20) {
  const x = tf.randomNormal([n, 6], 0, 1, 'float32', 11);
  const y = tf.randomNormal([n, 3], 0, 1, 'float32', 12);
  return { x, y, data: tensorDataset({ x, y }), dispose: () => tf.dispose([x, y]) };
}

/** Mean squared error of the net on a batch. */
export const mse = (net: TinyNet) => (batch: Record<'x' | 'y', tf.Tensor>) => tf.mean(tf.square(tf.sub(net.forward(batch.x), batch.y))) as tf.Scalar;

/** The bits of every weight of a module, by name. */
export function weightBits(m: Module): Record<string, number[]> {
  return Object.fromEntries(m.namedParameters().map(([n, v]) => [n, Array.from(new Uint32Array((v.dataSync() as Float32Array).slice().buffer))]));
}
