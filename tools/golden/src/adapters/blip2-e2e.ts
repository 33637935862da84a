import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors } from '@vlm/core';
import { generate, loadBlip2VisionModel, loadDecoderLMSync, type CausalLM } from '@vlm/frozen-loaders';
import { buildLmInputs, qformerFromHfBlip2, type QFormer } from '@vlm/qformer';
import { tensorOf, type GoldenAdapter } from '../golden-case';

/**
 * Whole Hugging Face `Blip2ForConditionalGeneration` cases (`blip2/<model>/case*`): the model
 * folder beside the case (`config.json` + `model.safetensors`, as `save_pretrained` wrote them)
 * is loaded through the public APIs only, as a user would load a real checkpoint:
 *
 * - `vision_model.*` → `loadBlip2VisionModel` (@vlm/frozen-loaders);
 * - `query_tokens`, `qformer.*`, `language_projection.*` → `qformerFromHfBlip2` (@vlm/qformer),
 *   run in mode `'query'` on the vision `last_hidden_state`;
 * - `language_model.*` → `loadDecoderLMSync` with the `text_config` and `keyPrefix`;
 * - the merge is `buildLmInputs({ layout: 'hf' })` (@vlm/qformer): the image placeholders of
 *   `input_ids` get the projected queries (`masked_scatter`).
 *
 * `logits` is a forward pass on the merged embeddings; `generated_ids` / `step_logits` come from
 * greedy `generate` with the merged embeddings as the prompt and no stop token (the reference
 * passes `eos_token_id=None`). `logits` is compared only where `attention_mask == 1` (the case
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

  const vision = loadBlip2VisionModel({ config, weights });
  let qformer: QFormer | undefined;
  let lm: CausalLM | undefined;
  const result: Record<string, tf.Tensor> = {};
  try {
    const { tensors } = readSafetensors(weights, { source: weightsPath });
    try {
      qformer = qformerFromHfBlip2(config, tensors); // ignores vision_model.* and language_model.*
    } finally {
      tf.dispose(Object.values(tensors));
    }
    lm = loadDecoderLMSync({ config: config.text_config, weights, keyPrefix: 'language_model.' });

    const v = vision.forward(pixelValues);
    result['output.vision_last_hidden_state'] = v.lastHiddenState;
    result['output.vision_pooler_output'] = v.poolerOutput;
    const q = qformer.encode({ imageEmbeds: v.lastHiddenState, mode: 'query' });
    q.queryOutput?.dispose();
    result['output.qformer_last_hidden_state'] = q.lastHiddenState;
    if (!q.projected) throw new Error(`case ${c.name}: the QFormer has no language_projection`);
    result['output.language_model_inputs'] = q.projected;

    const textEmbeds = lm.embedTokens(inputIds);
    const merged = buildLmInputs({ layout: 'hf', visualEmbeds: q.projected, inputIds, inputsEmbeds: textEmbeds, attentionMask, imageTokenIndex });
    tf.dispose([textEmbeds, merged.attentionMask, merged.labels]);
    result['output.merged_inputs_embeds'] = merged.inputsEmbeds;

    const out = lm.forward({ inputsEmbeds: merged.inputsEmbeds, attentionMask });
    result['output.logits'] = out.logits;
    tf.dispose([out.lastHiddenState, out.lastLayerOutput]);
    // Logits at padded positions are implementation-defined (README: compare where attention_mask == 1).
    // merged_inputs_embeds is compared everywhere: a pad's embedding is embed_tokens(pad) in any implementation.
    result['mask.output.logits'] = tf.tidy(() => tf.expandDims(tf.cast(attentionMask, 'int32'), -1));

    const gen = generate(lm, {
      inputIds,
      inputsEmbeds: merged.inputsEmbeds,
      attentionMask,
      maxNewTokens: c.sidecar.case?.generation?.max_new_tokens ?? tensorOf(c, 'output.generated_ids').shape[1]! - inputIds.shape[1]!,
      returnStepLogits: true,
    });
    result['output.generated_ids'] = tf.tensor2d(gen.sequences, [gen.sequences.length, gen.sequences[0]!.length], 'int32');
    result['output.step_logits'] = gen.stepLogits!;
    return result;
  } catch (e) {
    tf.dispose(Object.values(result));
    throw e;
  } finally {
    lm?.dispose();
    qformer?.dispose();
    vision.dispose();
  }
};

/** Whole-model BLIP-2 adapters, by `case.hf_class`. */
export const blip2E2eAdapters: Record<string, GoldenAdapter> = {
  Blip2ForConditionalGeneration: blip2ForConditionalGeneration,
};
