// ESM program: a bridge composed from @vlm/core and @vlm/perceiver, one training step, and the
// Node entry of @vlm/frozen-loaders. Typechecked with skipLibCheck: false (node16 and bundler).
import * as tf from '@tensorflow/tfjs';
import { Linear, Module, applyGradients, selectBackend, trainableVariables } from '@vlm/core';
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
const bridge = new Bridge();
const vision = tf.randomNormal([2, 9, 16]);
const start = tf.memory().numTensors;
const optimizer = tf.train.adam(1e-2);
const losses: number[] = [];
for (let step = 0; step < 3; step++) {
  const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(bridge.forward(vision))) as tf.Scalar, trainableVariables(bridge));
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
if (shape !== '2x4x8' || !(losses[2]! < losses[0]!) || img.width !== 1 || img.data[0] !== 255) {
  throw new Error(`esm: unexpected result ${JSON.stringify({ shape, losses, img: [img.width, img.data[0]] })}`);
}
console.log(`esm ok: backend ${backend}, out ${shape}, loss ${losses.map((l) => l.toFixed(4)).join(' → ')}, png ${img.width}×${img.height}`);
