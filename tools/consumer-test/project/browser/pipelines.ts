// @vlm/pipelines in a browser bundle (cpu backend only): a whole (tiny, random) Flamingo assembled
// from an open_clip ViT, a GPT-2 and the bridge, generating from pixels.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '@vlm/core';
import { OpenClipVisionTransformer, createDecoderLM, parseOpenClipVisionConfig } from '@vlm/frozen-loaders';
import { Flamingo } from '@vlm/pipelines';
import { report } from './report';

report(async () => {
  await selectBackend(['cpu']);
  const vision = new OpenClipVisionTransformer(parseOpenClipVisionConfig({ vision_cfg: { image_size: 32, patch_size: 8, width: 32, layers: 1, head_width: 8 } }));
  const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: 98, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });
  const flamingo = new Flamingo({
    vision, lm, ownParts: true,
    bridge: { perceiver: { dim: 32, numLayers: 1, dimHead: 8, numHeads: 4, numQueries: 4 }, crossAttnEveryNLayers: 1, dimHead: 8, heads: 4, ffMult: 2, onlyAttendImmediateMedia: true, mediaTokenId: 97, eocTokenId: 96 },
  });
  const pixels = tf.randomUniform([1, 1, 3, 32, 32]);
  const { newTokens } = flamingo.generate({ images: pixels, prompt: tf.tensor2d([[2, 97, 11]], undefined, 'int32'), maxNewTokens: 3 });
  flamingo.dispose();
  return `Flamingo generated ${JSON.stringify(newTokens)}`;
});
