// @vlm/gated-xattn in a browser bundle with only the cpu backend installed.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '@vlm/core';
import { GatedCrossAttentionBlock, mediaLocationsFromIds } from '@vlm/gated-xattn';
import { report } from './report';

report(async () => {
  await selectBackend(['cpu']);
  const block = new GatedCrossAttentionBlock({ dim: 16, dimVisual: 8, dimHead: 4, heads: 2 });
  const ids = tf.tensor2d([[5, 97, 7, 97, 9]], undefined, 'int32');
  const x = tf.randomNormal([1, 5, 16]);
  const y = block.forward(x, tf.randomNormal([1, 2, 3, 8]), mediaLocationsFromIds(ids, 97));
  const same = tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]; // gates start at 0: the block is the identity
  if (y.shape.join('x') !== '1x5x16' || same !== 0) throw new Error(`got ${y.shape} diff ${same}`);
  return `GatedCrossAttentionBlock ${y.shape.join('x')}, identity at init`;
});
