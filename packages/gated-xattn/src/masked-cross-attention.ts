import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Linear, Module, assertShape, scaledDotProductAttention } from '@vlm/core';
import { mediaAttentionMask, textTime, type MediaMask } from './media-locations';

/** Constructor arguments of {@link MaskedCrossAttention} (PyTorch: `dim, dim_visual, dim_head, heads, only_attend_immediate_media`). */
export interface MaskedCrossAttentionArgs {
  /** Width of the text hidden states (queries and output). */
  dim: number;
  /** Width of the visual tokens (keys and values). */
  dimVisual: number;
  /** Width of each head. Default: `64`. */
  dimHead?: number;
  /** Number of heads. Default: `8`. */
  heads?: number;
  /**
   * A text token attends only to the latest image at or before it (true), or to every image
   * at or before it (false). Default: `true` (the only mode Flamingo builds).
   */
  onlyAttendImmediateMedia?: boolean;
}

/**
 * Options of the media-masked forward passes ({@link MaskedCrossAttention.forwardWithOptions},
 * {@link GatedCrossAttentionBlock.forwardWithOptions}).
 */
export interface MediaForwardOptions {
  /**
   * `[batch, tokens]`, bool or numeric: non-zero at `<image>` tokens. Without it (and without
   * `mask`) every token attends to all media.
   */
  mediaLocations?: tf.Tensor;
  /**
   * OpenFlamingo's `use_cached_media`: every text token attends to the last image named in
   * `mediaLocations` (which may then be the prompt's, of another length). Default: `false`.
   */
  useCachedMedia?: boolean;
  /**
   * A mask already built by {@link mediaAttentionMask} (e.g. once per forward pass for every
   * block of a {@link FlamingoLM}); `mediaLocations` is then ignored.
   */
  mask?: MediaMask;
}

/**
 * Flamingo's text → media cross-attention with media-location masking (OpenFlamingo's
 * `MaskedCrossAttention`); not gated, no residual (see {@link GatedCrossAttentionBlock}).
 *
 * ```text
 * q = to_q(norm(x))                 media → [b, T·m, dimVisual]; k, v = to_kv(media).chunk(2)
 * text_time = cumsum(media_locations)      token i may see image j (1-based) iff
 *   text_time[i] == j (onlyAttendImmediateMedia) or text_time[i] >= j
 * out = to_out(softmax(q·kᵀ/√dimHead, masked)·v), and exactly 0 where text_time == 0
 * ```
 * Without `mediaLocations` every token attends to all media.
 *
 * State-dict keys: `norm.{weight,bias}` `[dim]`, `to_q.weight` `[inner, dim]`, `to_kv.weight`
 * `[2·inner, dimVisual]` (rows `[k; v]`), `to_out.weight` `[dim, inner]`.
 *
 * @example
 * ```ts
 * const attn = new MaskedCrossAttention({ dim: 32, dimVisual: 24, dimHead: 8, heads: 4 });
 * const x = tf.randomNormal([2, 9, 32]), media = tf.randomNormal([2, 2, 6, 24]); // 2 images × 6 latents
 * const loc = mediaLocationsFromIds(tf.tensor2d([[1, 1, 9, 1, 1, 1, 9, 1, 1], [1, 1, 1, 9, 1, 9, 1, 1, 1]], undefined, 'int32'), 9);
 * attn.forward(x, media, loc).shape; // [2, 9, 32]  (rows 0-1 / 0-2 are exactly 0)
 * ```
 */
export class MaskedCrossAttention extends Module {
  /** Text width. */
  readonly dim: number;
  /** Visual width. */
  readonly dimVisual: number;
  /** Width of each head. */
  readonly dimHead: number;
  /** Number of heads. */
  readonly heads: number;
  /** Immediate-media (true) or all-previous-media (false) masking. */
  readonly onlyAttendImmediateMedia: boolean;
  /** LayerNorm of the text (`norm`). */
  readonly norm: LayerNorm;
  /** Query projection (`to_q`, no bias). */
  readonly toQ: Linear;
  /** Fused key/value projection of the media (`to_kv`, no bias). */
  readonly toKv: Linear;
  /** Output projection (`to_out`, no bias). */
  readonly toOut: Linear;

  constructor(args: MaskedCrossAttentionArgs) {
    super();
    this.dim = args.dim;
    this.dimVisual = args.dimVisual;
    this.dimHead = args.dimHead ?? 64;
    this.heads = args.heads ?? 8;
    this.onlyAttendImmediateMedia = args.onlyAttendImmediateMedia ?? true;
    const inner = this.dimHead * this.heads;
    this.norm = this.registerModule('norm', new LayerNorm({ dim: this.dim }));
    this.toQ = this.registerModule('to_q', new Linear({ inFeatures: this.dim, outFeatures: inner, bias: false }));
    this.toKv = this.registerModule('to_kv', new Linear({ inFeatures: this.dimVisual, outFeatures: 2 * inner, bias: false }));
    this.toOut = this.registerModule('to_out', new Linear({ inFeatures: inner, outFeatures: this.dim, bias: false }));
  }

  /**
   * @param x text hidden states `[batch, tokens, dim]`
   * @param media visual tokens `[batch, T, m, dimVisual]` (T images of m tokens)
   * @param mediaLocations optional `[batch, tokens]` (bool or numeric, non-zero = `<image>` token)
   * @returns `[batch, tokens, dim]`
   */
  forward(x: tf.Tensor, media: tf.Tensor, mediaLocations?: tf.Tensor): tf.Tensor {
    return this.forwardWithOptions(x, media, { mediaLocations });
  }

  /**
   * {@link MaskedCrossAttention.forward} with every option: `useCachedMedia` (generation with
   * cached media) or a mask precomputed by {@link mediaAttentionMask}.
   * @param x `[batch, tokens, dim]`
   * @param media `[batch, T, m, dimVisual]`
   * @returns `[batch, tokens, dim]`
   */
  forwardWithOptions(x: tf.Tensor, media: tf.Tensor, options: MediaForwardOptions = {}): tf.Tensor {
    const { mediaLocations } = options;
    assertShape(x, [null, null, this.dim], 'MaskedCrossAttention x', ['batch', 'tokens', 'dim']);
    const [b, n] = x.shape as [number, number, number];
    assertShape(media, [b, null, null, this.dimVisual], 'MaskedCrossAttention media', ['batch', 'T', 'm', 'dimVisual']);
    const [, T, m] = media.shape as [number, number, number, number];
    const own = !options.mask && mediaLocations ? this.buildMask(mediaLocations, media.shape, n, options.useCachedMedia ?? false) : undefined;
    const mask = options.mask ?? own;
    try {
      if (mask) {
        assertShape(mask.allowed, [b, 1, n, T * m], 'MaskedCrossAttention mask.allowed', ['batch', '1', 'tokens', 'T·m']);
        assertShape(mask.hasMedia, [b, n, 1], 'MaskedCrossAttention mask.hasMedia', ['batch', 'tokens', '1']);
      }
      return tf.tidy(() => {
        const q = this.toQ.forward(this.norm.forward(x)); // [b, n, inner]
        const kv = this.toKv.forward(tf.reshape(media, [b, T * m, this.dimVisual])); // media-major keys
        const [k, v] = tf.split(kv, 2, -1) as [tf.Tensor, tf.Tensor];
        const out = this.toOut.forward(scaledDotProductAttention(q, k, v, { heads: this.heads, scale: this.dimHead ** -0.5, allowed: mask?.allowed }));
        // Tokens before the first image: attention weights 0, so the output is exactly +0: a
        // product with the 0/1 row mask, plus 0 (which turns x·0 = −0 into +0 and leaves every
        // other value as it is); a broadcasting Select of the wasm backend cost ~5 ms here.
        return mask ? tf.add(tf.mul(out, tf.cast(mask.hasMedia, 'float32')), 0) : out;
      });
    } finally {
      if (own) tf.dispose([own.allowed, own.hasMedia]);
    }
  }

  private buildMask(mediaLocations: tf.Tensor, mediaShape: number[], n: number, useCachedMedia: boolean): MediaMask {
    const b = mediaShape[0]!;
    if (useCachedMedia) assertShape(mediaLocations, [b, null], 'MaskedCrossAttention mediaLocations', ['batch', 'promptTokens']);
    else assertShape(mediaLocations, [b, n], 'MaskedCrossAttention mediaLocations', ['batch', 'tokens']);
    const time = textTime(mediaLocations, { useCachedMedia, length: n });
    try {
      return mediaAttentionMask(time, mediaShape, this.onlyAttendImmediateMedia);
    } finally {
      time.dispose();
    }
  }
}
