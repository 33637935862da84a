import * as tf from '@tensorflow/tfjs-core';
import { decoderContext, type StateDict } from '@vlm/core';
import { mediaLocationsFromIds } from '@vlm/gated-xattn';
import type { OpenClipVisionTransformer } from '@vlm/frozen-loaders';
import { Flamingo, type OpenFlamingoConfig } from '@vlm/pipelines';
import { tensorOf, type GoldenAdapter, type GoldenCase } from '../golden-case';

/** The case's weights: every tensor that is not `input.*` / `output.*` (a whole `Flamingo.state_dict()`). */
function flamingoStateDict(c: GoldenCase): StateDict {
  return Object.fromEntries(Object.entries(c.tensors).filter(([k]) => !k.startsWith('input.') && !k.startsWith('output.')));
}

function scalarOf(c: GoldenCase, key: string): number {
  return tensorOf(c, key).dataSync()[0]!;
}

/** The sidecar's pieces as the {@link OpenFlamingoConfig} that `Flamingo.fromOpenFlamingo` reads. */
function openFlamingoConfig(c: GoldenCase): OpenFlamingoConfig {
  const s = c.sidecar;
  return {
    open_clip_config: s.open_clip_config,
    text_config: s.config,
    perceiver_kwargs: s.perceiver_kwargs,
    xattn_kwargs: s.xattn_kwargs,
    cross_attn_every_n_layers: s.flamingo.cross_attn_every_n_layers,
    media_token_id: scalarOf(c, 'input.media_token_id'),
    eoc_token_id: scalarOf(c, 'input.eoc_token_id'),
  };
}

/**
 * OpenFlamingo end-to-end cases (`flamingo_e2e/*`, sidecar `flamingo.class` =
 * `open_flamingo.Flamingo`): a whole `Flamingo.state_dict()` (open_clip ViT, Perceiver
 * Resampler, OPT with gated cross-attention) loaded by `Flamingo.fromOpenFlamingo`
 * (@vlm/pipelines), as a user loads a real checkpoint, with the sidecar's configs.
 *
 * `vision_features` = `flamingo.encodeImages` (open_clip's ln_post tokens without CLS);
 * `vision_tokens_pre_ln_post` = the encoder's `forward().preLnPost` without CLS;
 * `perceiver_out` = `flamingo.resample`; `logits` and the hidden states come from one
 * `flamingo.lang.forward` with hidden states (the same pass as `flamingo.forward`); the block
 * outputs re-run each block on the hidden state that enters its layer, and the last layer's raw
 * output re-runs that layer. Greedy generation is `flamingo.generate` (stops at
 * `<|endofchunk|>`, as OpenFlamingo's `generate`). Per the case README, `logits`,
 * `xattn_block_out.*` and `decoder_layer_out.*` are compared only where `attention_mask == 1`.
 */
const openFlamingo: GoldenAdapter = (c) => {
  const s = c.sidecar;
  const weights = flamingoStateDict(c);
  const visionX = tensorOf(c, 'input.vision_x'); // [B, T_img, F, 3, H, W]
  const langX = tensorOf(c, 'input.lang_x'); // [B, T]
  const attentionMask = tensorOf(c, 'input.attention_mask');
  const mediaTokenId = scalarOf(c, 'input.media_token_id');
  if (visionX.rank !== 6) throw new Error(`case ${c.name}: input.vision_x: expected [B, T_img, F, 3, H, W], got [${visionX.shape}]`);
  const [b, tImg, f, ch, h, w] = visionX.shape as number[] as [number, number, number, number, number, number];
  const tText = langX.shape[1]!;

  const model = Flamingo.fromOpenFlamingo({ config: openFlamingoConfig(c), weights });
  const vit = model.vision as OpenClipVisionTransformer;
  const flat = tf.reshape(visionX, [b * tImg * f, ch, h, w]); // Flamingo._encode_vision_x: (B·T·F, 3, H, W)
  const result: Record<string, tf.Tensor> = {};
  try {
    const lm = model.lm;
    const flamingo = model.lang;
    const layers = [...flamingo.blocks.keys()].sort((x, y) => x - y);
    if (s.flamingo.xattn_layer_indices && layers.join() !== s.flamingo.xattn_layer_indices.join()) {
      throw new Error(`case ${c.name}: Flamingo put blocks before layers [${layers}], the sidecar says [${s.flamingo.xattn_layer_indices}]`);
    }
    // Vision tower → perceiver.
    result['output.vision_features'] = tf.tidy(() => {
      const tokens = model.encodeImages(flat); // [B·T·F, g², W]
      return tf.reshape(tokens, [b, tImg, f, tokens.shape[1], tokens.shape[2]]);
    });
    result['output.vision_tokens_pre_ln_post'] = tf.tidy(() => {
      const { preLnPost, lnPost } = vit.forward(flat); // [B·T·F, 1+g², W]
      lnPost.dispose();
      const [n, tokens, width] = preLnPost.shape;
      return tf.reshape(tf.slice(preLnPost, [0, 1, 0], [n, tokens - 1, width]), [b, tImg, f, tokens - 1, width]);
    });
    const media = model.resample(result['output.vision_features']); // [B, T_img, n_latents, d]
    result['output.perceiver_out'] = media;

    // Flamingo.forward(vision_x, lang_x, attention_mask)
    const out = flamingo.forward({ inputIds: langX, attentionMask, media, outputHiddenStates: true });
    result['output.logits'] = out.logits;
    const hidden = out.hiddenStates!; // the input of each decoder layer (before its block), then the final-normed output
    const numLayers = lm.numLayers;
    const fl = flamingo;
    const decoder = lm;
    Object.assign(
      result,
      tf.tidy(() => {
        const r: Record<string, tf.Tensor> = {};
        const locations = mediaLocationsFromIds(langX, mediaTokenId);
        let lastInput = hidden[numLayers - 1]!;
        for (const [i, block] of fl.blocks) {
          const x = block.forward(hidden[i]!, media, locations);
          r[`output.xattn_block_out.${i}`] = x;
          if (i === numLayers - 1) lastInput = x;
        }
        for (let i = 0; i < numLayers - 1; i++) r[`output.decoder_layer_out.${i}`] = tf.clone(hidden[i + 1]!);
        const context = decoderContext({ batch: b, queries: tText, attentionMask });
        r[`output.decoder_layer_out.${numLayers - 1}`] = decoder.forwardLayer(numLayers - 1, lastInput, context).hidden;
        return r;
      }),
    );
    tf.dispose([out.lastHiddenState, ...hidden]);

    // Padded positions are implementation-defined in these outputs (README: compare only attention_mask == 1).
    for (const key of Object.keys(result)) {
      if (/^output\.(logits|xattn_block_out\.\d+|decoder_layer_out\.\d+)$/.test(key)) {
        result[`mask.${key}`] = tf.tidy(() => tf.expandDims(tf.cast(attentionMask, 'int32'), -1));
      }
    }

    // Flamingo.generate(..., max_new_tokens, num_beams=1, do_sample=False): eos = <|endofchunk|>.
    const gen = model.generate({
      images: visionX, // pixels [B, T_img, F, 3, H, W]: encoded, resampled and generated from by the pipeline
      prompt: langX,
      attentionMask,
      maxNewTokens: s.case?.generation?.max_new_tokens ?? tensorOf(c, 'output.generated_ids').shape[1]! - tText,
      suppressMediaToken: false, // OpenFlamingo's generate can choose <image>; the reference logits are unmasked
    });
    result['output.generated_ids'] = gen.sequences;
    result['output.step_logits'] = gen.stepLogits;
    return result;
  } catch (e) {
    tf.dispose(Object.values(result));
    throw e;
  } finally {
    flat.dispose();
    model.dispose();
  }
};

/** End-to-end OpenFlamingo adapters, by the sidecar's `flamingo.class`. */
export const flamingoE2eAdapters: Record<string, GoldenAdapter> = {
  'open_flamingo.Flamingo': openFlamingo,
};
