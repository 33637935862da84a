import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '@vlm/core';
import { workload } from './workload.js';

window.runSmoke = async () => {
  const report = { default: await selectBackend(['webgpu', 'webgl', 'wasm', 'cpu'], { wasmPaths: '/wasm/' }), backends: {} };
  for (const name of ['webgpu', 'webgl', 'wasm', 'cpu']) {
    try {
      const started = await selectBackend([name], { wasmPaths: '/wasm/' });
      const r = await workload();
      report.backends[name] = { started, backend: tf.getBackend(), ...r };
    } catch (e) {
      report.backends[name] = { error: String(e && e.message ? e.message : e) };
    }
  }
  return report;
};
