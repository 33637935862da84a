import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type StateDict } from '@vlm/core';
import { qformerArgsFromConfig, type QFormerArgs } from '@vlm/qformer';

/** The repo's vendored golden folder (never ../shared: the repo must pass on a fresh clone). */
export const GOLDEN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../golden');

export interface Golden {
  sidecar: Record<string, any>;
  args: QFormerArgs;
  tensors: Record<string, tf.Tensor>;
  params: StateDict;
  dispose(): void;
}

export function loadGolden(name: string): Golden {
  const sidecar = JSON.parse(readFileSync(resolve(GOLDEN, `${name}.json`), 'utf8')) as Record<string, any>;
  const { tensors } = readSafetensors(readFileSync(resolve(GOLDEN, `${name}.safetensors`)), { source: name });
  const params: StateDict = {};
  for (const [k, t] of Object.entries(tensors)) if (k.startsWith('param.')) params[k.slice(6)] = t;
  return { sidecar, args: qformerArgsFromConfig(sidecar.config), tensors, params, dispose: () => tf.dispose(Object.values(tensors)) };
}

/** `max |a - b| / (atol + rtol·|b|)`: <= 1 means within tolerance. */
export function tolRatio(a: tf.Tensor, b: tf.Tensor, atol: number, rtol: number): number {
  return tf.tidy(() => tf.max(tf.div(tf.abs(tf.sub(a, b)), tf.add(atol, tf.mul(rtol, tf.abs(b))))).dataSync()[0]!);
}

/** The tiny Q-Former of the golden cases. */
export const TINY: QFormerArgs = {
  hiddenSize: 32,
  numHiddenLayers: 3,
  numAttentionHeads: 4,
  intermediateSize: 64,
  crossAttentionFrequency: 2,
  encoderHiddenSize: 24,
  numQueryTokens: 8,
  vocabSize: 50,
  maxPositionEmbeddings: 16,
};

export const ids2d = (rows: number[][]) => tf.tensor2d(rows, undefined, 'int32');
