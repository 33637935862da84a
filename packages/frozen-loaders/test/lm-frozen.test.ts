import * as tf from '@tensorflow/tfjs-core';
import { expect, test } from 'vitest';
import { Linear, countParameters, trainableVariables } from '@vlm/core';
import { loadDecoderLMFromStateDict } from '../src/lm/index';
import { readLMCase } from './lm-helpers';

test.each(['gpt2_plain', 'opt_plain', 'llama_plain'])(
  '%s: frozen on load; 3 Adam steps of a bridge into inputsEmbeds train the bridge only, the LM stays bit-identical',
  (name) => {
    const c = readLMCase(name);
    const lm = loadDecoderLMFromStateDict(c.config, c.weights);
    c.dispose();
    expect(countParameters(lm, { trainableOnly: true })).toBe(0);
    expect(lm.parameters().every((v) => !v.trainable)).toBe(true);
    const snapshot = lm.parameters().map((v) => v.dataSync().slice());

    const visualDim = 12;
    const bridge = new Linear({ inFeatures: visualDim, outFeatures: lm.info.embedDim });
    const visual = tf.randomNormal([2, 3, visualDim], 0, 1, 'float32', 7); // 3 "visual" tokens per row
    const ids = tf.tensor2d([[5, 9, 14, 2], [7, 7, 30, 11]], undefined, 'int32');
    const targets = tf.oneHot(tf.tensor2d([[9, 14, 2, 3], [7, 30, 11, 1]], undefined, 'int32'), lm.vocabSize);
    const loss = () =>
      tf.tidy(() => {
        const embeds = tf.concat([bridge.forward(visual), lm.embedTokens(ids)], 1);
        const logits = lm.forward({ inputsEmbeds: embeds, logitsToKeep: 4 }).logits;
        return tf.losses.softmaxCrossEntropy(targets, logits) as tf.Scalar;
      });

    const vars = trainableVariables(bridge, lm);
    expect(vars).toEqual(bridge.parameters());
    const optimizer = tf.train.adam(0.05);
    const first = loss();
    const losses: number[] = [first.dataSync()[0]!];
    first.dispose();
    const before = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      const { value, grads } = tf.variableGrads(loss, vars);
      expect(Object.keys(grads).sort()).toEqual(vars.map((v) => v.name).sort());
      optimizer.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    // only Adam's two slots per bridge weight remain
    expect(tf.memory().numTensors - before).toBe(2 * vars.length);
    const last = loss();
    losses.push(last.dataSync()[0]!);
    last.dispose();
    expect(losses[1]).toBeLessThan(losses[0]!);
    lm.parameters().forEach((v, i) => expect(v.dataSync(), v.name).toEqual(snapshot[i]));

    optimizer.dispose();
    tf.dispose([visual, ids, targets]);
    bridge.dispose();
    lm.dispose();
  },
);
