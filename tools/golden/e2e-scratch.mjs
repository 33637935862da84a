import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { readSafetensors } from '@vlm/core';
import { loadDecoderLMFromStateDict } from '@vlm/frozen-loaders';
import { FlamingoPerceiverResampler, flamingoPerceiverResamplerArgsFromConfig } from '@vlm/perceiver';
import { FlamingoLM, flamingoLMStateDictFromOpenFlamingo, gatedCrossAttentionBlockArgsFromConfig } from '@vlm/gated-xattn';
for (const name of ['flamingo_e2e_n1', 'flamingo_e2e_n2']) {
  const dir = '/work/shared/golden/flamingo_e2e/';
  const side = JSON.parse(readFileSync(dir + name + '.json', 'utf8'));
  const { tensors } = readSafetensors(readFileSync(dir + name + '.safetensors'));
  // perceiver
  const pk = side.perceiver_kwargs;
  const perc = new FlamingoPerceiverResampler(flamingoPerceiverResamplerArgsFromConfig(pk));
  const pd = {}; for (const [k, t] of Object.entries(tensors)) if (k.startsWith('perceiver.')) pd[k.slice(10)] = t;
  perc.loadStateDict(pd);
  const media = perc.forward(tensors['output.vision_features']);
  const err = (a, b) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  console.log(name, 'perceiver', err(media, tensors['output.perceiver_out']));
  // LM
  const lmd = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (!k.startsWith('lang_encoder.model.decoder.')) continue;
    if (k.includes('gated_cross_attn_layer')) continue;
    lmd[k.replace('lang_encoder.', '').replace('.decoder_layer.', '.')] = t;
  }
  const lm = loadDecoderLMFromStateDict(side.config, lmd);
  const xk = side.xattn_kwargs; const fl = side.flamingo;
  console.log(JSON.stringify(xk), JSON.stringify({ n: fl.cross_attn_every_n_layers, media: fl.media_token_id, idx: fl.xattn_layer_indices }));
  const args = gatedCrossAttentionBlockArgsFromConfig(xk);
  const f = new FlamingoLM({ lm, dimVisual: args.dimVisual, dimHead: args.dimHead, heads: args.heads, ffMult: args.ffMult, onlyAttendImmediateMedia: args.onlyAttendImmediateMedia, crossAttnEveryNLayers: fl.cross_attn_every_n_layers, mediaTokenId: fl.media_token_id });
  f.loadStateDict(flamingoLMStateDictFromOpenFlamingo(tensors));
  const ids = tensors['input.lang_x'], mask = tensors['input.attention_mask'];
  const out = f.forward({ inputIds: ids, attentionMask: mask, media: tensors['output.perceiver_out'] });
  const valid = tf.reshape(tf.cast(mask, 'float32'), [...mask.shape, 1]);
  console.log(name, 'logits (valid positions)', err(tf.mul(out.logits, valid), tf.mul(tensors['output.logits'], valid)));
  const g = f.generate({ inputIds: ids, attentionMask: mask, media: tensors['output.perceiver_out'], maxNewTokens: 6 });
  console.log(name, 'generated equal:', JSON.stringify(g.sequences.arraySync()) === JSON.stringify(tensors['output.generated_ids'].arraySync()), 'step logits err', err(g.stepLogits, tensors['output.step_logits']));
}
