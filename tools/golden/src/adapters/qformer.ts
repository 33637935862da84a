import * as tf from '@tensorflow/tfjs-core';
import { QFormer, qformerArgsFromConfig, type QFormerMode } from '@vlm/qformer';
import { lossAndGrads, paramsOf, tensorOf, type GoldenAdapter, type GoldenCase } from '../golden-case';

/**
 * `QFormer` cases: the sidecar `config` is the reference `QFormerConfig` (snake_case),
 * `forward.mode` the pass and `forward.output == 'projected'` selects
 * `language_projection(query_output)` as `output.out` (else `last_hidden_state`).
 */
const qformer: GoldenAdapter = (c: GoldenCase) => {
  const module = new QFormer(qformerArgsFromConfig(c.sidecar.config));
  try {
    module.loadStateDict(paramsOf(c));
    const forward = (c.sidecar.forward ?? {}) as { mode?: QFormerMode; output?: string };
    const mode = forward.mode;
    const ids = c.tensors['input.input_ids'];
    const mask = c.tensors['input.attention_mask'];
    const imageMask = c.tensors['input.image_attention_mask'];
    const useImage = mode !== 'text' && c.tensors['input.image_embeds'] !== undefined;
    const floatInputs: Record<string, tf.Tensor> = useImage ? { image_embeds: tensorOf(c, 'input.image_embeds') } : {};
    const run = (inputs: Record<string, tf.Tensor>) => {
      const out = module.encode({
        imageEmbeds: inputs.image_embeds,
        inputIds: mode === 'query' ? undefined : ids,
        attentionMask: mode === 'query' ? undefined : mask,
        imageAttentionMask: imageMask,
        mode,
      });
      const want = forward.output === 'projected' ? out.projected : out.lastHiddenState;
      if (!want) throw new Error(`case ${c.name}: the QFormer returned no '${forward.output ?? 'last_hidden_state'}'`);
      return want;
    };
    const result = lossAndGrads(c, module, floatInputs, (inputs) => run(inputs));
    if (c.tensors['output.last_hidden_state']) {
      result['output.last_hidden_state'] = tf.tidy(() => {
        const out = module.encode({ imageEmbeds: floatInputs.image_embeds, inputIds: ids, attentionMask: mask, imageAttentionMask: imageMask, mode });
        return out.lastHiddenState;
      });
    }
    return result;
  } finally {
    module.dispose();
  }
};

/** Adapters of @vlm/qformer, by sidecar module name. */
export const qformerAdapters: Record<string, GoldenAdapter> = { QFormer: qformer };
