// Runs before every test file: registers all TF.js kernels and gradients (the umbrella
// package does that), then selects the backend named by VLM_BACKEND (default 'cpu'). With
// VLM_NATIVE=1, matMuls run on @vlm/native-matmul's kernels (and core's fast-matMul paths).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll } from 'vitest';
import { enableNativeMatMul } from '@vlm/native-matmul';

const backend = process.env.VLM_BACKEND ?? 'cpu';
// Drop TF.js's "install the node backend" banner (tfjs-node cannot be installed offline). Not
// IS_TEST: that flag also turns on TF.js's kernel leak checks, which fail inside its own ops.
const warn = console.warn.bind(console);
console.warn = (...args: unknown[]) => {
  if (!String(args[0]).includes('tfjs-node')) warn(...args);
};

beforeAll(async () => {
  if (tf.getBackend() !== backend) {
    const ok = await tf.setBackend(backend);
    if (!ok) throw new Error(`could not start the TF.js backend '${backend}'`);
  }
  await tf.ready();
  if (process.env.VLM_NATIVE === '1') enableNativeMatMul();
});
