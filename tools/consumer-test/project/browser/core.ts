// @vlm/core in a browser bundle with only the wasm and cpu backends installed.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { LayerNorm, MultiHeadAttention, selectBackend } from '@vlm/core';
import { report } from './report';

report(async () => {
  const backend = await selectBackend(['webgpu', 'webgl', 'wasm', 'cpu'], { wasmPaths: '/wasm/', wasmBackend: wasm });
  if (backend !== 'wasm') throw new Error(`expected wasm (webgpu and webgl are not installed), got ${backend}`);
  const attn = new MultiHeadAttention({ embedDim: 16, numHeads: 4 });
  const norm = new LayerNorm({ dim: 16 });
  const x = tf.randomNormal([2, 5, 16]);
  const start = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
    const h = norm.forward(x);
    return tf.mean(tf.square(attn.forward(h, h, h))) as tf.Scalar;
  }));
  const n = Object.keys(grads).length;
  tf.dispose([value, ...Object.values(grads)]);
  if (tf.memory().numTensors !== start) throw new Error('tensors leaked');
  return `backend ${backend}, ${n} gradients`;
});
