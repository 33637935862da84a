// The page's live training in Node (wasm backend), for the steps/s the browser test reports next
// to the browser's: the same frozen parts, caption set and trainer (src/live-training.ts).
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '@vlm/core';
import { NSFWJS_MOBILENET_V2_COLOUR_CUT, StandardizedVisionEncoder, loadDecoderLM, loadNsfwjsMobileNetV2Encoder, loadTokenizer } from '@vlm/frozen-loaders';
import { smallFlamingoBridge } from '@vlm/pipelines';
import { readShapeWorldLM } from '@vlm/shapeworld/node';
import { captionSet, disposeCaptionSet, freshFlamingo, trainLive } from '../src/live-training';

export async function nodeStepsPerSecond(steps: number): Promise<{ backend: string; stepsPerSecond: number; losses: number[]; leaked: number }> {
  const backend = await selectBackend(['wasm', 'cpu']);
  const raw = await loadNsfwjsMobileNetV2Encoder(NSFWJS_MOBILENET_V2_COLOUR_CUT);
  // the training speed does not depend on the statistics' values: unit statistics
  const mean = tf.zeros([raw.tokenWidth]) as tf.Tensor1D;
  const std = tf.ones([raw.tokenWidth]) as tf.Tensor1D;
  const encoder = new StandardizedVisionEncoder(raw, { mean, std });
  tf.dispose([mean, std]);
  const files = readShapeWorldLM();
  const lm = await loadDecoderLM({ config: files.config, weights: files.weights });
  const tokenizer = loadTokenizer(files.tokenizer, { tokenizerConfig: files.tokenizerConfig });
  const id = (t: string) => tokenizer.tokenToId(t)!;
  const flamingo = freshFlamingo({ encoder, lm, tokenizer, bridge: smallFlamingoBridge({ tokenWidth: encoder.tokenWidth, mediaTokenId: id('<image>'), eocTokenId: id('<|endofchunk|>') }), seed: 0 });
  const set = await captionSet(encoder, tokenizer, id('<pad>'), 16, 11);
  const before = tf.memory().numTensors;
  const r = await trainLive(flamingo, set, { steps, batchSize: 4, lr: 1e-3, seed: 0 });
  const leaked = tf.memory().numTensors - before;
  disposeCaptionSet(set);
  flamingo.dispose();
  lm.dispose();
  encoder.dispose();
  return { backend, stepsPerSecond: r.stepsPerSecond, losses: r.losses, leaked };
}
