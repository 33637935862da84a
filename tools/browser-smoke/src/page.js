import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '@vlm/core';
import { workload } from './workload.js';

window.runSmoke = async () => {
  const report = { default: await selectBackend(['webgpu', 'webgl', 'wasm', 'cpu'], { wasmPaths: '/wasm/', wasmBackend: wasm }), backends: {} };
  for (const name of ['webgpu', 'webgl', 'wasm', 'cpu']) {
    try {
      const started = await selectBackend([name], { wasmPaths: '/wasm/', wasmBackend: wasm });
      const r = await workload();
      report.backends[name] = { started, backend: tf.getBackend(), ...r };
    } catch (e) {
      report.backends[name] = { error: String(e && e.message ? e.message : e) };
    }
  }
  return report;
};
