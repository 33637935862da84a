import { PerceiverResampler, perceiverResamplerArgsFromConfig } from '@vlm/perceiver';
import { GatedCrossAttention, gatedCrossAttentionArgsFromConfig } from '@vlm/gated-xattn';
import { lossAndGrads, paramsOf, tensorOf, type GoldenAdapter, type GoldenCase } from '../golden-case';

/** `SeedPerceiverResampler` cases: `out = module(input.vision_features)`. */
const seedPerceiverResampler: GoldenAdapter = (c: GoldenCase) => {
  const module = new PerceiverResampler(perceiverResamplerArgsFromConfig(c.sidecar.config));
  try {
    module.loadStateDict(paramsOf(c));
    return lossAndGrads(c, module, { vision_features: tensorOf(c, 'input.vision_features') }, (i) => module.forward(i.vision_features!));
  } finally {
    module.dispose();
  }
};

/** `SeedGatedCrossAttention` cases: `out = module(input.text_hidden, input.visual_tokens)`. */
const seedGatedCrossAttention: GoldenAdapter = (c: GoldenCase) => {
  const module = new GatedCrossAttention(gatedCrossAttentionArgsFromConfig(c.sidecar.config));
  try {
    module.loadStateDict(paramsOf(c));
    const inputs = { text_hidden: tensorOf(c, 'input.text_hidden'), visual_tokens: tensorOf(c, 'input.visual_tokens') };
    return lossAndGrads(c, module, inputs, (i) => module.forward(i.text_hidden!, i.visual_tokens!));
  } finally {
    module.dispose();
  }
};

/** Adapters of the design's seed modules (@vlm/perceiver, @vlm/gated-xattn), by sidecar module name. */
export const seedAdapters: Record<string, GoldenAdapter> = {
  SeedPerceiverResampler: seedPerceiverResampler,
  SeedGatedCrossAttention: seedGatedCrossAttention,
};
