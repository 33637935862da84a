// Test helpers shared by the packages' suites (golden cases, tfjs-layers save → load round trips).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readSafetensors, type LayerModule, ModuleLayer } from '@vlm/core';

/** A vendored golden case of the repo's golden/ folder. */
export function goldenCase(name: string): { sidecar: Record<string, any>; tensors: Record<string, tf.Tensor> } {
  const dir = resolve(__dirname, 'golden');
  return {
    sidecar: JSON.parse(readFileSync(resolve(dir, `${name}.json`), 'utf8')),
    tensors: readSafetensors(readFileSync(resolve(dir, `${name}.safetensors`))).tensors,
  };
}

export function params(tensors: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith('param.')).map(([k, t]) => [k.slice(6), t]));
}

export const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
export const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

/**
 * Wraps `module` in a ModuleLayer inside a tfjs-layers model, saves it to memory and loads it
 * back; returns both models' predictions on `inputs`.
 */
export async function saveLoadRoundTrip(module: LayerModule, inputShapes: number[][], inputs: tf.Tensor[]) {
  const symbolic = inputShapes.map((shape) => tfl.input({ shape }));
  const out = new ModuleLayer({ module, name: 'bridge' }).apply(symbolic.length === 1 ? symbolic[0]! : symbolic) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: symbolic, outputs: out });
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
  const a = model.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor;
  const b = loaded.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor;
  const topology = JSON.stringify(saved!.modelTopology);
  const before = tf.memory().numTensors;
  tf.dispose(loaded.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor);
  const leaked = tf.memory().numTensors - before;
  return { a, b, topology, leaked, dispose: () => (model.dispose(), loaded.dispose(), tf.dispose([a, b])) };
}
