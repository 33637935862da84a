import * as tf from '@tensorflow/tfjs-core';
import { generate, loadDecoderLMFromStateDict } from '@vlm/frozen-loaders';
import type { GoldenAdapter, GoldenCase } from '../golden-case';

/**
 * Backbone LM cases (`backbone_gpt2_*`, `backbone_opt_*`, `backbone_llama_*`): loads the case's
 * weights (HF keys) with the sidecar's config through `@vlm/frozen-loaders`, runs a forward
 * pass with hidden states, and for `*_generate` greedy decoding. Padded cases also return
 * `mask.<key>` tensors so that only positions with `attention_mask == 1` are compared.
 */
function runLM(c: GoldenCase): Record<string, tf.Tensor> {
  const weights: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(c.tensors)) if (!k.startsWith('input.') && !k.startsWith('output.')) weights[k] = t;
  const lm = loadDecoderLMFromStateDict(c.sidecar.config, weights);
  try {
    const inputIds = c.tensors['input.input_ids'];
    const inputsEmbeds = c.tensors['input.inputs_embeds'];
    const attentionMask = c.tensors['input.attention_mask'];
    const positionIds = c.tensors['input.position_ids'];
    const out = lm.forward({ inputIds: inputsEmbeds ? undefined : inputIds, inputsEmbeds, attentionMask, positionIds, outputHiddenStates: true });
    const result: Record<string, tf.Tensor> = { 'output.logits': out.logits, 'output.last_layer_output': out.lastLayerOutput };
    out.hiddenStates!.forEach((h, i) => (result[`output.hidden_states.${i}`] = h));
    if (attentionMask && c.sidecar.case?.padded_positions_meaningful === false) {
      for (const key of Object.keys(result)) result[`mask.${key}`] = tf.expandDims(attentionMask, -1);
    }
    const gen = c.sidecar.case?.generation;
    if (gen) {
      const { sequences, stepLogits } = generate(lm, { inputIds, attentionMask, maxNewTokens: gen.max_new_tokens, returnStepLogits: true });
      result['output.generated_ids'] = tf.tensor2d(sequences, [sequences.length, sequences[0]!.length], 'int32');
      result['output.step_logits'] = stepLogits!;
    }
    return result;
  } finally {
    lm.dispose();
  }
}

/** Adapters by `case.hf_class`. */
export const lmAdapters: Record<string, GoldenAdapter> = {
  GPT2LMHeadModel: runLM,
  OPTForCausalLM: runLM,
  LlamaForCausalLM: runLM,
};
