// ESM program: a bridge composed from @vlm/core and @vlm/perceiver, one training step, and the
// Node entry of @vlm/frozen-loaders. Typechecked with skipLibCheck: false (node16 and bundler).
import * as tf from '@tensorflow/tfjs';
import { Linear, Module, applyGradients, manualSeed, selectBackend, trainableVariables } from '@vlm/core';
import { PerceiverResampler } from '@vlm/perceiver';
import { decodeImage } from '@vlm/frozen-loaders/node';

class Bridge extends Module {
  readonly resampler = this.registerModule('resampler', new PerceiverResampler({ dim: 16, numQueries: 4, numLayers: 1, numHeads: 2 }));
  readonly proj = this.registerModule('proj', new Linear({ inFeatures: 16, outFeatures: 8 }));
  forward(vision: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.proj.forward(this.resampler.forward(vision)));
  }
}

const backend = await selectBackend(['wasm', 'cpu']);
// Seeded weights and input, and a target the output starts far from (mean squared error ≈ 1), so that
// five Adam steps lower the loss on every backend and machine (an output pulled to 0 starts near its
// minimum, where a first Adam step of lr·sign(g) can overshoot).
manualSeed(0);
const bridge = new Bridge();
const vision = tf.randomNormal([2, 9, 16], 0, 1, 'float32', 1);
const target = tf.ones([2, 4, 8]);
const optimizer = tf.train.adam(1e-2);
const losses: number[] = [];
for (let step = 0; step < 5; step++) {
  const { value, grads } = tf.variableGrads(() => tf.losses.meanSquaredError(target, bridge.forward(vision)) as tf.Scalar, trainableVariables(bridge));
  applyGradients(optimizer, grads);
  losses.push(value.dataSync()[0]!);
  tf.dispose([value, ...Object.values(grads)]);
}
const out = bridge.forward(vision);
const shape = out.shape.join('x');
out.dispose();
// a 1×1 red PNG, decoded by the Node entry's pure-JS decoder
const png = Uint8Array.from(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64'));
const img = await decodeImage(png);
if (shape !== '2x4x8' || !(losses[4]! < losses[0]!) || img.width !== 1 || img.data[0] !== 255) {
  throw new Error(`esm: unexpected result ${JSON.stringify({ shape, losses, img: [img.width, img.data[0]] })}`);
}
console.log(`esm ok: backend ${backend}, out ${shape}, loss ${losses.map((l) => l.toFixed(4)).join(' → ')}, png ${img.width}×${img.height}`);
