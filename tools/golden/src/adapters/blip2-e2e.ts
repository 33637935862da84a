import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Blip2VisionModel } from '@vlm/frozen-loaders';
import { Blip2 } from '@vlm/pipelines';
import { tensorOf, type GoldenAdapter } from '../golden-case';

/**
 * Whole Hugging Face `Blip2ForConditionalGeneration` cases (`blip2/<model>/case*`): the model
 * folder beside the case (`config.json` + `model.safetensors`, as `save_pretrained` wrote them)
 * is loaded by `Blip2.fromHuggingFace` (@vlm/pipelines), as a user loads a real checkpoint
 * (EVA ViT, Q-Former + language projection, OPT). The vision outputs come from the model's
 * encoder, the Q-Former outputs from `blip2.qformer` on them, the merged embeddings from
 * `blip2.lmInputs` (the image placeholders of `input_ids` get the projected queries, as
 * `masked_scatter`), `logits` from `blip2.forward`, and `generated_ids` / `step_logits` from
 * `blip2.generate` on the pixels and the placeholder ids, greedy with no stop token (the
 * reference passes `eos_token_id=None`). `logits` is compared only where `attention_mask == 1` (the case
 * README); `merged_inputs_embeds` everywhere, which is stricter than the README asks.
 */
const blip2ForConditionalGeneration: GoldenAdapter = (c) => {
  const configPath = join(c.dir, 'config.json');
  const config = (existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : c.sidecar.config) as Record<string, any>;
  const weightsPath = join(c.dir, 'model.safetensors');
  if (!existsSync(weightsPath)) throw new Error(`case ${c.name}: no model.safetensors beside the case in ${c.dir}`);
  const weights = new Uint8Array(readFileSync(weightsPath));
  const imageTokenIndex = config.image_token_index ?? config.image_token_id;
  if (typeof imageTokenIndex !== 'number') {
    throw new Error(`case ${c.name}: config.json has no image_token_index (a legacy BLIP-2 config); this adapter needs the placeholder layout`);
  }
  const pixelValues = tensorOf(c, 'input.pixel_values');
  const inputIds = tensorOf(c, 'input.input_ids');
  const attentionMask = tensorOf(c, 'input.attention_mask');

  const blip2 = Blip2.fromHuggingFace({ config, weights });
  const vision = blip2.vision as Blip2VisionModel;
  const result: Record<string, tf.Tensor> = {};
  try {
    const v = vision.forward(pixelValues);
    result['output.vision_last_hidden_state'] = v.lastHiddenState;
    result['output.vision_pooler_output'] = v.poolerOutput;
    const q = blip2.qformer.encode({ imageEmbeds: v.lastHiddenState, mode: 'query' });
    q.queryOutput?.dispose();
    result['output.qformer_last_hidden_state'] = q.lastHiddenState;
    if (!q.projected) throw new Error(`case ${c.name}: the QFormer has no language_projection`);
    result['output.language_model_inputs'] = q.projected;

    const merged = blip2.lmInputs({ visionTokens: v.lastHiddenState, inputIds, attentionMask });
    tf.dispose([merged.attentionMask, merged.labels]);
    result['output.merged_inputs_embeds'] = merged.inputsEmbeds;
    result['output.logits'] = blip2.forward({ visionTokens: v.lastHiddenState, inputIds, attentionMask });
    // Logits at padded positions are implementation-defined (README: compare where attention_mask == 1).
    // merged_inputs_embeds is compared everywhere: a pad's embedding is embed_tokens(pad) in any implementation.
    result['mask.output.logits'] = tf.tidy(() => tf.expandDims(tf.cast(attentionMask, 'int32'), -1));

    const pixels = tf.expandDims(pixelValues, 1); // one image per row: [b, 1, 3, H, W]
    const gen = blip2.generate({
      images: pixels,
      prompt: inputIds,
      attentionMask,
      maxNewTokens: c.sidecar.case?.generation?.max_new_tokens ?? tensorOf(c, 'output.generated_ids').shape[1]! - inputIds.shape[1]!,
      returnStepLogits: true,
    });
    pixels.dispose();
    result['output.generated_ids'] = tf.tensor2d(gen.sequences, [gen.sequences.length, gen.sequences[0]!.length], 'int32');
    result['output.step_logits'] = gen.stepLogits!;
    return result;
  } catch (e) {
    tf.dispose(Object.values(result));
    throw e;
  } finally {
    blip2.dispose();
  }
};

/** Whole-model BLIP-2 adapters, by `case.hf_class`. */
export const blip2E2eAdapters: Record<string, GoldenAdapter> = {
  Blip2ForConditionalGeneration: blip2ForConditionalGeneration,
};
