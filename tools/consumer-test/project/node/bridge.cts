// CommonJS program: the same bridge through require() (the packages' .cjs builds).
import tf = require('@tensorflow/tfjs');
import core = require('@vlm/core');
import perceiver = require('@vlm/perceiver');
import loaders = require('@vlm/frozen-loaders');

class Bridge extends core.Module {
  readonly resampler = this.registerModule('resampler', new perceiver.PerceiverResampler({ dim: 16, numQueries: 4, numLayers: 1, numHeads: 2 }));
  readonly proj = this.registerModule('proj', new core.Linear({ inFeatures: 16, outFeatures: 8 }));
  forward(vision: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.proj.forward(this.resampler.forward(vision)));
  }
}

async function main(): Promise<void> {
  const backend = await core.selectBackend(['cpu']);
  const bridge = new Bridge();
  const vision = tf.randomNormal([2, 9, 16]);
  const optimizer: tf.Optimizer = tf.train.sgd(0.1); // the base type takes variableGrads' map directly
  const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(bridge.forward(vision))) as tf.Scalar, core.trainableVariables(bridge));
  optimizer.applyGradients(grads);
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  const keys = Object.keys(bridge.stateDict()).length;
  const pixels = loaders.preprocessImages([{ data: new Uint8Array(4 * 4 * 3).fill(128), width: 4, height: 4, channels: 3 }], loaders.clipPreprocessing(4));
  const shape = bridge.forward(vision).shape.join('x');
  if (shape !== '2x4x8' || pixels.shape.join('x') !== '1x3x4x4' || !Number.isFinite(loss)) throw new Error(`cjs: unexpected ${shape} ${pixels.shape}`);
  console.log(`cjs ok: backend ${backend}, out ${shape}, loss ${loss.toFixed(4)}, ${keys} state-dict keys, pixels ${pixels.shape.join('x')}`);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
