// @vlm/frozen-loaders' main entry in a browser bundle (cpu backend only): the browser's own
// image decoder, preprocessing, and a small GPT-2 generating.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '@vlm/core';
import { clipPreprocessing, createDecoderLM, decodeImage, generate, preprocessImages } from '@vlm/frozen-loaders';
import { report } from './report';

report(async () => {
  await selectBackend(['cpu']);
  const canvas = new OffscreenCanvas(6, 4);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = 'rgb(255, 0, 0)';
  ctx.fillRect(0, 0, 6, 4);
  const png = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
  const img = await decodeImage(png);
  if (img.width !== 6 || img.height !== 4 || img.data[0] !== 255 || img.data[1] !== 0) throw new Error(`decoded ${img.width}×${img.height} ${img.data.slice(0, 4)}`);
  const pixels = preprocessImages([img], clipPreprocessing(4));
  const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: 50, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 });
  const { sequences } = generate(lm, { inputIds: [[1, 2, 3]], maxNewTokens: 3 });
  return `decodeImage ${img.width}×${img.height}, pixels ${pixels.shape.join('x')}, generated ${JSON.stringify(sequences)}`;
});
