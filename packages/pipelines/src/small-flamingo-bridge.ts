import type { FlamingoBridgeConfig } from './flamingo';

/** Arguments of {@link smallFlamingoBridge}. */
export interface SmallFlamingoBridgeArgs {
  /** Width of the vision encoder's tokens (the resampler works at this width). */
  tokenWidth: number;
  /** Id of `<image>` in the LM vocabulary. */
  mediaTokenId: number;
  /** Id of `<|endofchunk|>` in the LM vocabulary. */
  eocTokenId: number;
  /** Perceiver Resampler layers. Default: `1` (the web page's live bridge; the demo's full run uses `2`). */
  perceiverDepth?: number;
  /**
   * Frames (views) per image, each with its own learned frame embedding
   * ({@link FlamingoBridgeConfig.framesPerImage}); the demo's encoder gives 2 (a blurred view
   * and a colour-blind view). Default: `1`.
   */
  framesPerImage?: number;
}

/**
 * The small Flamingo bridge the apps train on the world (`apps/demo`, and `apps/web`, live in the
 * browser): a Perceiver Resampler of 16 latents (4 heads of 32, feed-forward ×1) and a gated
 * cross-attention block before every LM layer (4 heads of 32, feed-forward ×2), immediate-media
 * masking as in OpenFlamingo.
 *
 * @example
 * ```ts
 * const bridge = smallFlamingoBridge({ tokenWidth: encoder.tokenWidth, mediaTokenId: tok.tokenToId('<image>')!, eocTokenId: tok.tokenToId('<|endofchunk|>')! });
 * const flamingo = new Flamingo({ vision: encoder, lm, bridge, tokenizer: tok });
 * ```
 */
export function smallFlamingoBridge(args: SmallFlamingoBridgeArgs): FlamingoBridgeConfig {
  const frames = args.framesPerImage ?? 1;
  for (const [name, v] of Object.entries({ tokenWidth: args.tokenWidth, perceiverDepth: args.perceiverDepth ?? 1, framesPerImage: frames })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`smallFlamingoBridge: expected ${name} to be a positive integer, got ${String(v)}`);
  }
  for (const [name, v] of Object.entries({ mediaTokenId: args.mediaTokenId, eocTokenId: args.eocTokenId })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`smallFlamingoBridge: expected ${name} to be a token id (an integer >= 0), got ${String(v)}`);
  }
  return {
    perceiver: { dim: args.tokenWidth, depth: args.perceiverDepth ?? 1, dimHead: 32, heads: 4, numLatents: 16, ffMult: 1, ...(frames > 1 ? { maxNumFrames: frames } : {}) },
    crossAttnEveryNLayers: 1,
    dimHead: 32,
    heads: 4,
    ffMult: 2,
    onlyAttendImmediateMedia: true,
    mediaTokenId: args.mediaTokenId,
    eocTokenId: args.eocTokenId,
    ...(frames > 1 ? { framesPerImage: frames } : {}),
  };
}
