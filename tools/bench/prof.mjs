// scratch profiler (not shipped)
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { PerceiverResampler } from '@vlm/perceiver';
await tf.setBackend('wasm'); await tf.ready();
const B = Number(process.argv[2] ?? 8);
const m = new PerceiverResampler({ dim: 1024, numQueries: 64, numLayers: 6, numHeads: 8 });
const x = tf.randomNormal([B, 257, 1024]);
for (let i = 0; i < 2; i++) { const t = performance.now(); const o = m.forward(x); await o.data(); o.dispose(); console.log('fwd', performance.now() - t); }
const t0 = performance.now();
const p = await tf.profile(() => { const o = m.forward(x); o.dataSync(); o.dispose(); });
console.log('profiled wall', performance.now() - t0);
const agg = {};
for (const k of p.kernels) { const key = k.name + ' ' + (k.name.includes('MatMul') ? JSON.stringify(k.inputShapes) : ''); agg[key] ??= [0, 0]; agg[key][0] += k.kernelTimeMs; agg[key][1]++; }
Object.entries(agg).sort((a, b) => b[1][0] - a[1][0]).slice(0, 25).forEach(([k, v]) => console.log(v[0].toFixed(1).padStart(8), String(v[1]).padStart(5), k));
