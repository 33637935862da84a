import { FlamingoPerceiverResampler, flamingoPerceiverResamplerArgsFromConfig } from '@vlm/perceiver';
import { GatedCrossAttentionBlock, gatedCrossAttentionBlockArgsFromConfig } from '@vlm/gated-xattn';
import { lossAndGrads, paramsOf, tensorOf, type GoldenAdapter, type GoldenCase } from '../golden-case';

/** `FlamingoPerceiverResampler` cases: `out = module(input.x)`, x `[b, T, F, v, dim]`. */
const flamingoPerceiverResampler: GoldenAdapter = (c: GoldenCase) => {
  const module = new FlamingoPerceiverResampler(flamingoPerceiverResamplerArgsFromConfig(c.sidecar.config));
  try {
    module.loadStateDict(paramsOf(c));
    return lossAndGrads(c, module, { x: tensorOf(c, 'input.x') }, (i) => module.forward(i.x!));
  } finally {
    module.dispose();
  }
};

/**
 * `FlamingoGatedCrossAttentionBlock` cases: `out = module(input.x, input.media,
 * input.media_locations.bool())`; media_locations is U8, read as int32 (non-zero = `<image>`).
 */
const flamingoGatedCrossAttentionBlock: GoldenAdapter = (c: GoldenCase) => {
  const module = new GatedCrossAttentionBlock(gatedCrossAttentionBlockArgsFromConfig(c.sidecar.config));
  try {
    module.loadStateDict(paramsOf(c));
    const mediaLocations = c.tensors['input.media_locations'];
    const inputs = { x: tensorOf(c, 'input.x'), media: tensorOf(c, 'input.media') };
    return lossAndGrads(c, module, inputs, (i) => module.forward(i.x!, i.media!, mediaLocations));
  } finally {
    module.dispose();
  }
};

/** Adapters of the Flamingo modules (@vlm/perceiver, @vlm/gated-xattn), by sidecar module name. */
export const flamingoAdapters: Record<string, GoldenAdapter> = {
  FlamingoPerceiverResampler: flamingoPerceiverResampler,
  FlamingoGatedCrossAttentionBlock: flamingoGatedCrossAttentionBlock,
};
