// @vlm/perceiver in a browser bundle with only the cpu backend installed.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '@vlm/core';
import { FlamingoPerceiverResampler, PerceiverResampler, padVisionTokens } from '@vlm/perceiver';
import { report } from './report';

report(async () => {
  await selectBackend(['wasm', 'cpu']);
  const resampler = new PerceiverResampler({ dim: 16, numQueries: 4, numLayers: 1, numHeads: 2 });
  const { features, keyPaddingMask } = padVisionTokens([tf.randomNormal([7, 16]), tf.randomNormal([3, 16])]);
  const a = resampler.forward(features, keyPaddingMask).shape.join('x');
  const flamingo = new FlamingoPerceiverResampler({ dim: 16, depth: 1, dimHead: 8, heads: 2, numLatents: 4 });
  const b = flamingo.forward(tf.randomNormal([1, 2, 1, 5, 16])).shape.join('x');
  if (a !== '2x4x16' || b !== '1x2x4x16') throw new Error(`shapes ${a} ${b}`);
  return `${tf.getBackend()}: PerceiverResampler ${a}, FlamingoPerceiverResampler ${b}`;
});
