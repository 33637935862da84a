import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { writeFileSync } from 'node:fs';
import { loadNsfwjsMobileNetV2Encoder, preprocessImages } from '@vlm/frozen-loaders';
import { splitScenes, renderScene } from '@vlm/shapeworld';
import { enableNativeMatMul } from '@vlm/native-matmul';
await tf.setBackend('wasm'); enableNativeMatMul();
const layer = process.argv[2] ?? 'block_6_expand_relu';
const enc = await loadNsfwjsMobileNetV2Encoder({ layer, pool: 1 });
const sets = { train: splitScenes('train', 700, { seed: 3, objects: 1 }), held: splitScenes('test-compositional', 300, { seed: 3, objects: 1 }) };
for (const [name, scenes] of Object.entries(sets)) {
  const out = { avg4mean: [], avg4max: [], max4mean: [], avg2max: [], labels: [] };
  for (let i = 0; i < scenes.length; i += 25) {
    const batch = scenes.slice(i, i + 25);
    const x = preprocessImages(batch.map(renderScene), enc.preprocessing);
    const r = tf.tidy(() => {
      const t = enc.encode(x); // [b, 784, c]
      const [b, n, c] = t.shape; const s = Math.round(Math.sqrt(n));
      const m = tf.reshape(t, [b, s, s, c]);
      const a4 = tf.avgPool(m, 4, 4, 'valid'), x4 = tf.maxPool(m, 4, 4, 'valid'), a2 = tf.avgPool(m, 2, 2, 'valid');
      return [tf.mean(a4, [1, 2]), tf.max(a4, [1, 2]), tf.mean(x4, [1, 2]), tf.max(a2, [1, 2])];
    });
    const keys = ['avg4mean', 'avg4max', 'max4mean', 'avg2max'];
    r.forEach((t, k) => out[keys[k]].push(...t.arraySync()));
    tf.dispose([x, ...r]);
    out.labels.push(...batch.map((s) => ({ colour: s.objects[0].colour, shape: s.objects[0].shape, size: s.objects[0].size })));
  }
  writeFileSync(`/work/diag/probe/${layer}-${name}.json`, JSON.stringify(out));
  console.log(name, 'done');
}
