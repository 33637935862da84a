import { argsFromPyTorchKwargs, type PyTorchKwargs } from '@vlm/core';
import type { FlamingoPerceiverResamplerArgs } from './flamingo-perceiver-resampler';
import type { PerceiverResamplerArgs } from './perceiver-resampler';

/**
 * {@link PerceiverResamplerArgs} from the PyTorch reference kwargs
 * (`dim, n_queries, n_layers, n_heads`). Unknown keys throw.
 *
 * @example
 * ```ts
 * perceiverResamplerArgsFromConfig({ dim: 32, n_queries: 8, n_layers: 2, n_heads: 4 });
 * // { dim: 32, numQueries: 8, numLayers: 2, numHeads: 4 }
 * ```
 */
export function perceiverResamplerArgsFromConfig(kwargs: PyTorchKwargs): PerceiverResamplerArgs {
  return argsFromPyTorchKwargs<PerceiverResamplerArgs>('perceiverResamplerArgsFromConfig', kwargs, {
    dim: 'dim',
    n_queries: 'numQueries',
    n_layers: 'numLayers',
    n_heads: 'numHeads',
  });
}

/**
 * {@link FlamingoPerceiverResamplerArgs} from OpenFlamingo's `PerceiverResampler` kwargs
 * (`dim, depth, dim_head, heads, num_latents, max_num_media, max_num_frames, ff_mult`; `null`
 * means "none"). Unknown keys throw.
 *
 * @example
 * ```ts
 * flamingoPerceiverResamplerArgsFromConfig({ dim: 32, depth: 2, dim_head: 8, heads: 4, num_latents: 6, max_num_media: null });
 * // { dim: 32, depth: 2, dimHead: 8, heads: 4, numLatents: 6 }
 * ```
 */
export function flamingoPerceiverResamplerArgsFromConfig(kwargs: PyTorchKwargs): FlamingoPerceiverResamplerArgs {
  return argsFromPyTorchKwargs<FlamingoPerceiverResamplerArgs>('flamingoPerceiverResamplerArgsFromConfig', kwargs, {
    dim: 'dim',
    depth: 'depth',
    dim_head: 'dimHead',
    heads: 'heads',
    num_latents: 'numLatents',
    max_num_media: 'maxNumMedia',
    max_num_frames: 'maxNumFrames',
    ff_mult: 'ffMult',
  });
}
