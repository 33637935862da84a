// Runs before every test file: registers all TF.js kernels and gradients (the umbrella
// package does that), then selects the backend named by VLM_BACKEND (default 'cpu').
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll } from 'vitest';

const backend = process.env.VLM_BACKEND ?? 'cpu';
// Quiet TF.js's "install the node backend" banner (it cannot be installed here, see the README).
tf.env().set('IS_TEST', true);

beforeAll(async () => {
  if (tf.getBackend() !== backend) {
    const ok = await tf.setBackend(backend);
    if (!ok) throw new Error(`could not start the TF.js backend '${backend}'`);
  }
  await tf.ready();
});
