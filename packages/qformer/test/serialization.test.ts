import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { ModuleLayer, readSafetensors, writeSafetensors } from '@vlm/core';
import { MlpProjector, QFormer } from '@vlm/qformer';
import { TINY } from './helpers';

async function saveAndLoad(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tfl.loadLayersModel(tf.io.fromMemory(saved!));
}

describe('serialization', () => {
  test('QFormer inside a tfjs-layers model: save → load gives identical outputs', async () => {
    const input = tfl.input({ shape: [17, 24] });
    const layer = new ModuleLayer({ module: new QFormer({ ...TINY, llmHiddenSize: 40 }), name: 'qformer' });
    const output = layer.apply(input) as tfl.SymbolicTensor;
    expect(output.shape).toEqual([null, 8, 40]);
    const model = tfl.model({ inputs: input, outputs: output });
    expect(layer.weights.map((w) => w.originalName)).toContain('qformer/encoder.layer.0.crossattention.attention.key.weight');
    const loaded = await saveAndLoad(model);
    const x = tf.randomNormal([2, 17, 24], 0, 1, 'float32', 5);
    const a = model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expect(b.shape).toEqual([2, 8, 40]);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    const before = tf.memory().numTensors;
    tf.dispose(loaded.predict(x) as tf.Tensor);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  });

  test('MlpProjector inside a tfjs-layers model: save → load gives identical outputs', async () => {
    const input = tfl.input({ shape: [5, 12] });
    const output = new ModuleLayer({ module: new MlpProjector({ inFeatures: 12, outFeatures: 20 }) }).apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const loaded = await saveAndLoad(model);
    const x = tf.randomNormal([3, 5, 12], 0, 1, 'float32', 6);
    const a = model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expect(b.shape).toEqual([3, 5, 20]);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  });

  test('stateDict → safetensors → loadStateDict round trip reproduces every pass exactly', () => {
    const q = new QFormer({ ...TINY, llmHiddenSize: 40 });
    const sd = q.stateDict();
    const bytes = writeSafetensors(sd, { format: 'pt' });
    const { tensors } = readSafetensors(bytes);
    const again = new QFormer({ ...(q.getConfig() as object) });
    again.loadStateDict(tensors);
    const image = tf.randomNormal([2, 17, 24], 0, 1, 'float32', 1);
    const ids = tf.tensor2d([[3, 4, 5], [6, 7, 0]], undefined, 'int32');
    for (const mode of ['query', 'itm', 'itg', 'itc', 'text'] as const) {
      const a = q.encode({ imageEmbeds: image, inputIds: ids, mode }).lastHiddenState;
      const b = again.encode({ imageEmbeds: image, inputIds: ids, mode }).lastHiddenState;
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    }
    tf.dispose([...Object.values(sd), ...Object.values(tensors), image, ids]);
    q.dispose();
    again.dispose();
  });
});
