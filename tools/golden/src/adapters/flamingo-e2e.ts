import * as tf from '@tensorflow/tfjs-core';
import { decoderContext, writeSafetensors, type StateDict } from '@vlm/core';
import { loadDecoderLMFromStateDict, loadOpenClipVisionTransformer, type CausalLM } from '@vlm/frozen-loaders';
import {
  FlamingoLM,
  decoderLMStateDictFromOpenFlamingo,
  flamingoLMStateDictFromOpenFlamingo,
  gatedCrossAttentionBlockArgsFromConfig,
  mediaLocationsFromIds,
} from '@vlm/gated-xattn';
import { FlamingoPerceiverResampler, flamingoPerceiverResamplerArgsFromConfig } from '@vlm/perceiver';
import { tensorOf, type GoldenAdapter, type GoldenCase } from '../golden-case';

/** The case's weights: every tensor that is not `input.*` / `output.*` (a whole `Flamingo.state_dict()`). */
function flamingoStateDict(c: GoldenCase): StateDict {
  return Object.fromEntries(Object.entries(c.tensors).filter(([k]) => !k.startsWith('input.') && !k.startsWith('output.')));
}

/** The tensors under `prefix`, with the prefix stripped (same tensor objects). */
function underPrefix(dict: StateDict, prefix: string): StateDict {
  return Object.fromEntries(Object.entries(dict).flatMap(([k, t]) => (k.startsWith(prefix) ? [[k.slice(prefix.length), t]] : [])));
}

function scalarOf(c: GoldenCase, key: string): number {
  return tensorOf(c, key).dataSync()[0]!;
}

/**
 * OpenFlamingo end-to-end cases (`flamingo_e2e/*`, sidecar `flamingo.class` =
 * `open_flamingo.Flamingo`): a whole `Flamingo.state_dict()` (open_clip ViT, Perceiver
 * Resampler, OPT with gated cross-attention) run through the public APIs only:
 *
 * - `vision_encoder.*` → `loadOpenClipVisionTransformer` (@vlm/frozen-loaders) with the sidecar's
 *   `open_clip_config`: `vision_features` = `encode` (ln_post tokens, CLS dropped, open_clip 3.x),
 *   `vision_tokens_pre_ln_post` = `forward().preLnPost` without CLS;
 * - `perceiver.*` → `FlamingoPerceiverResampler` (@vlm/perceiver) from `perceiver_kwargs`;
 * - `lang_encoder.*` → the frozen OPT (`decoderLMStateDictFromOpenFlamingo` +
 *   `loadDecoderLMFromStateDict` with the sidecar's `config`) wrapped in a `FlamingoLM`
 *   (@vlm/gated-xattn) from `xattn_kwargs` and `cross_attn_every_n_layers`, whose blocks load
 *   from `flamingoLMStateDictFromOpenFlamingo`.
 *
 * `logits` and the hidden states come from one `FlamingoLM.forward` with hidden states; the
 * block outputs re-run each block (`GatedCrossAttentionBlock.forward`) on the hidden state that
 * enters its layer, and the last layer's raw output re-runs that layer (`forwardLayer`). Greedy
 * generation is `FlamingoLM.generate` with `eos` = `<|endofchunk|>`, as `Flamingo.generate`.
 * Per the case README, `logits`, `xattn_block_out.*` and `decoder_layer_out.*` are compared only
 * where `attention_mask == 1`.
 */
const openFlamingo: GoldenAdapter = (c) => {
  const s = c.sidecar;
  const weights = flamingoStateDict(c);
  const visionX = tensorOf(c, 'input.vision_x'); // [B, T_img, F, 3, H, W]
  const langX = tensorOf(c, 'input.lang_x'); // [B, T]
  const attentionMask = tensorOf(c, 'input.attention_mask');
  const mediaTokenId = scalarOf(c, 'input.media_token_id');
  const eocTokenId = scalarOf(c, 'input.eoc_token_id');
  if (visionX.rank !== 6) throw new Error(`case ${c.name}: input.vision_x: expected [B, T_img, F, 3, H, W], got [${visionX.shape}]`);
  const [b, tImg, f, ch, h, w] = visionX.shape as number[] as [number, number, number, number, number, number];
  const tText = langX.shape[1]!;

  const vit = loadOpenClipVisionTransformer({ config: s.open_clip_config, weights: writeSafetensors(weights) });
  const perceiver = new FlamingoPerceiverResampler(flamingoPerceiverResamplerArgsFromConfig(s.perceiver_kwargs));
  const flat = tf.reshape(visionX, [b * tImg * f, ch, h, w]); // Flamingo._encode_vision_x: (B·T·F, 3, H, W)
  let lm: CausalLM | undefined;
  let flamingo: FlamingoLM | undefined;
  const result: Record<string, tf.Tensor> = {};
  try {
    perceiver.loadStateDict(underPrefix(weights, 'perceiver.'));
    lm = loadDecoderLMFromStateDict(s.config, decoderLMStateDictFromOpenFlamingo(weights));
    const { dim, ...blockArgs } = gatedCrossAttentionBlockArgsFromConfig(s.xattn_kwargs);
    if (dim !== lm.hiddenSize) throw new Error(`case ${c.name}: xattn_kwargs.dim ${dim} is not the LM's hidden size ${lm.hiddenSize}`);
    flamingo = new FlamingoLM({ lm, ...blockArgs, crossAttnEveryNLayers: s.flamingo.cross_attn_every_n_layers, mediaTokenId });
    const layers = [...flamingo.blocks.keys()].sort((x, y) => x - y);
    if (s.flamingo.xattn_layer_indices && layers.join() !== s.flamingo.xattn_layer_indices.join()) {
      throw new Error(`case ${c.name}: FlamingoLM put blocks before layers [${layers}], the sidecar says [${s.flamingo.xattn_layer_indices}]`);
    }
    flamingo.loadStateDict(flamingoLMStateDictFromOpenFlamingo(weights));

    // Vision tower → perceiver.
    result['output.vision_features'] = tf.tidy(() => {
      const tokens = vit.encode(flat); // [B·T·F, g², W]
      return tf.reshape(tokens, [b, tImg, f, tokens.shape[1], tokens.shape[2]]);
    });
    result['output.vision_tokens_pre_ln_post'] = tf.tidy(() => {
      const { preLnPost, lnPost } = vit.forward(flat); // [B·T·F, 1+g², W]
      lnPost.dispose();
      const [n, tokens, width] = preLnPost.shape;
      return tf.reshape(tf.slice(preLnPost, [0, 1, 0], [n, tokens - 1, width]), [b, tImg, f, tokens - 1, width]);
    });
    const media = perceiver.forward(result['output.vision_features']); // [B, T_img, n_latents, d]
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
    const gen = flamingo.generate({
      inputIds: langX,
      attentionMask,
      media,
      maxNewTokens: s.case?.generation?.max_new_tokens ?? tensorOf(c, 'output.generated_ids').shape[1]! - tText,
      eosTokenId: eocTokenId,
      padTokenId: s.config.pad_token_id,
    });
    result['output.generated_ids'] = gen.sequences;
    result['output.step_logits'] = gen.stepLogits;
    return result;
  } catch (e) {
    tf.dispose(Object.values(result));
    throw e;
  } finally {
    flat.dispose();
    flamingo?.dispose();
    lm?.dispose();
    perceiver.dispose();
    vit.dispose();
  }
};

/** End-to-end OpenFlamingo adapters, by the sidecar's `flamingo.class`. */
export const flamingoE2eAdapters: Record<string, GoldenAdapter> = {
  'open_flamingo.Flamingo': openFlamingo,
};
