// The same computation in the browser and in Node: a torch-style MultiHeadAttention with fixed
// weights, its output and the gradient of sum(out * w) for every weight and the query.
import * as tf from '@tensorflow/tfjs-core';
import { MultiHeadAttention, causalMask } from '@vlm/core';

const fixed = (shape, k) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * 0.5), shape);
};

export async function workload() {
  const mha = new MultiHeadAttention({ embedDim: 8, numHeads: 2 });
  const sd = Object.fromEntries(Object.entries(mha.stateDictShapes()).map(([name, shape], i) => [name, fixed(shape, i)]));
  mha.loadStateDict(sd);
  tf.dispose(Object.values(sd));
  const q = fixed([2, 4, 8], 10);
  const w = fixed([2, 4, 8], 11);
  const attnMask = tf.tidy(() => tf.logicalNot(causalMask(4)));
  const before = tf.memory().numTensors;
  const f = (x) => tf.sum(tf.mul(mha.forward(x, x, x, { attnMask }), w));
  const out = tf.tidy(() => mha.forward(q, q, q, { attnMask }));
  const { value, grads } = tf.variableGrads(() => f(q), mha.parameters());
  value.dispose();
  const gq = tf.grad(f)(q);
  // data(), not dataSync(): WebGPU reads back asynchronously
  const result = {
    out: Array.from(await out.data()),
    gradQuery: Array.from(await gq.data()),
    gradInProj: Array.from(await grads[mha.parameters()[0].name].data()),
  };
  tf.dispose([out, gq, ...Object.values(grads)]);
  result.leaked = tf.memory().numTensors - before;
  tf.dispose([q, w, attnMask]);
  mha.dispose();
  return result;
}
