import { argsFromPyTorchKwargs, type PyTorchKwargs } from '@vlm/core';
import type { GatedCrossAttentionArgs } from './gated-cross-attention';
import type { GatedCrossAttentionBlockArgs } from './gated-cross-attention-block';

/**
 * {@link GatedCrossAttentionArgs} from the PyTorch reference kwargs (`dim, n_heads`). Unknown keys throw.
 *
 * @example
 * ```ts
 * gatedCrossAttentionArgsFromConfig({ dim: 32, n_heads: 4 }); // { dim: 32, numHeads: 4 }
 * ```
 */
export function gatedCrossAttentionArgsFromConfig(kwargs: PyTorchKwargs): GatedCrossAttentionArgs {
  return argsFromPyTorchKwargs<GatedCrossAttentionArgs>('gatedCrossAttentionArgsFromConfig', kwargs, { dim: 'dim', n_heads: 'numHeads' });
}

/**
 * {@link GatedCrossAttentionBlockArgs} from OpenFlamingo's `GatedCrossAttentionBlock` kwargs
 * (`dim, dim_visual, dim_head, heads, ff_mult, only_attend_immediate_media`). Unknown keys throw.
 *
 * @example
 * ```ts
 * gatedCrossAttentionBlockArgsFromConfig({ dim: 32, dim_visual: 24, dim_head: 8, heads: 4 });
 * // { dim: 32, dimVisual: 24, dimHead: 8, heads: 4 }
 * ```
 */
export function gatedCrossAttentionBlockArgsFromConfig(kwargs: PyTorchKwargs): GatedCrossAttentionBlockArgs {
  return argsFromPyTorchKwargs<GatedCrossAttentionBlockArgs>('gatedCrossAttentionBlockArgsFromConfig', kwargs, {
    dim: 'dim',
    dim_visual: 'dimVisual',
    dim_head: 'dimHead',
    heads: 'heads',
    ff_mult: 'ffMult',
    only_attend_immediate_media: 'onlyAttendImmediateMedia',
  });
}
