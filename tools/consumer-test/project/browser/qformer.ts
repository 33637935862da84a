// @vlm/qformer in a browser bundle with only the cpu backend installed.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '@vlm/core';
import { QFormer } from '@vlm/qformer';
import { report } from './report';

report(async () => {
  await selectBackend(['cpu']);
  const qformer = new QFormer({
    hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32, crossAttentionFrequency: 2,
    encoderHiddenSize: 12, numQueryTokens: 4, llmHiddenSize: 24, vocabSize: 50, maxPositionEmbeddings: 16,
  });
  const visual = qformer.forward(tf.randomNormal([2, 5, 12]));
  if (visual.shape.join('x') !== '2x4x24') throw new Error(`got ${visual.shape}`);
  return `QFormer soft prompt ${visual.shape.join('x')}`;
});
