import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { Linear, countParameters, trainableVariables } from '@vlm/core';
import { loadDecoderLMFromStateDict } from '../src/lm/index';
import { loadClipVisionModel } from '../src/vision/index';
import { readLMCase } from './lm-helpers';
import { GOLDEN_DIR, readCase } from './vision-helpers';

test('a bridge trained between a loaded vision encoder and a loaded LM: only the bridge gets gradients; both backbones stay bit-identical', () => {
  const v = readCase(join(GOLDEN_DIR, 'backbone_clip_plain'));
  const encoder = loadClipVisionModel({ config: v.sidecar.config, weights: v.bytes }, { layer: -2 }); // LLaVA-style features
  const pixels = tf.clone(v.tensors['input.pixel_values']!); // [2, 3, 32, 32]
  v.dispose();
  const c = readLMCase('gpt2_plain');
  const lm = loadDecoderLMFromStateDict(c.config, c.weights);
  c.dispose();
  expect(countParameters(encoder, { trainableOnly: true })).toBe(0);
  expect(countParameters(lm, { trainableOnly: true })).toBe(0);
  const snapshot = [...encoder.parameters(), ...lm.parameters()].map((p) => p.dataSync().slice());

  const bridge = new Linear({ inFeatures: encoder.tokenWidth, outFeatures: lm.info.embedDim }); // LLaVA's simplest projector
  const ids = tf.tensor2d([[5, 9, 14], [7, 30, 11]], undefined, 'int32');
  const targets = tf.oneHot(tf.tensor2d([[9, 14, 2], [30, 11, 1]], undefined, 'int32'), lm.vocabSize);
  const loss = () =>
    tf.tidy(() => {
      const visual = bridge.forward(encoder.encode(pixels)); // [2, 16, D]: the soft visual prompt
      const logits = lm.forward({ inputsEmbeds: tf.concat([visual, lm.embedTokens(ids)], 1), logitsToKeep: 3 }).logits;
      return tf.losses.softmaxCrossEntropy(targets, logits) as tf.Scalar;
    });
  const optimizer = tf.train.adam(0.05);
  const before = loss();
  const first = before.dataSync()[0]!;
  before.dispose();
  for (let step = 0; step < 3; step++) {
    // no variable list: TF.js differentiates every trainable variable there is — the frozen ones are not
    const { value, grads } = tf.variableGrads(loss);
    expect(Object.keys(grads).sort()).toEqual(trainableVariables(bridge).map((p) => p.name).sort());
    optimizer.applyGradients(grads);
    tf.dispose([value, ...Object.values(grads)]);
  }
  const after = loss();
  expect(after.dataSync()[0]!).toBeLessThan(first);
  after.dispose();
  [...encoder.parameters(), ...lm.parameters()].forEach((p, i) => expect(p.dataSync(), p.name).toEqual(snapshot[i]));

  optimizer.dispose();
  tf.dispose([pixels, ids, targets]);
  bridge.dispose();
  encoder.dispose();
  lm.dispose();
});
