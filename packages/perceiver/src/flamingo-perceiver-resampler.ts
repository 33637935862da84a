import * as tf from '@tensorflow/tfjs-core';
import {
  FeedForward,
  LayerNorm,
  Module,
  ModuleList,
  assertDtype,
  formatShape,
  normal,
  registerModuleClass,
  type LayerModule,
  type SymbolicShape,
} from '@vlm/core';
import { PerceiverAttention } from './perceiver-attention';

/**
 * Constructor arguments of {@link FlamingoPerceiverResampler} (PyTorch: `dim, depth, dim_head,
 * heads, num_latents, max_num_media, max_num_frames, ff_mult`). The upstream names are kept;
 * {@link PerceiverResampler}'s names are accepted too (`numQueries` = `numLatents`, `numLayers`
 * = `depth`, `numHeads` = `heads`): give one of each pair, or both with the same value.
 */
export interface FlamingoPerceiverResamplerArgs {
  /** Width of the media tokens, of the latents and of the output. */
  dim: number;
  /** Number of (attention, feed-forward) layers. Default: `6`. */
  depth?: number;
  /** Same as {@link FlamingoPerceiverResamplerArgs.depth} ({@link PerceiverResampler}'s name). */
  numLayers?: number;
  /** Width of each attention head. Default: `64`. */
  dimHead?: number;
  /** Number of attention heads. Default: `8`. */
  heads?: number;
  /** Same as {@link FlamingoPerceiverResamplerArgs.heads} ({@link PerceiverResampler}'s name). */
  numHeads?: number;
  /** Number of learned latents, i.e. of visual tokens out per media item. Default: `64`. */
  numLatents?: number;
  /** Same as {@link FlamingoPerceiverResamplerArgs.numLatents} ({@link PerceiverResampler}'s name). */
  numQueries?: number;
  /** When set, learn a media-time embedding per media index (`media_time_embs`). Default: none. */
  maxNumMedia?: number;
  /** When set, learn a frame embedding per frame index (`frame_embs`). Default: none. */
  maxNumFrames?: number;
  /** Feed-forward hidden width as a multiple of `dim`. Default: `4`. */
  ffMult?: number;
}

/**
 * Flamingo's Perceiver Resampler (the Flamingo paper, OpenFlamingo's `PerceiverResampler`):
 * every media item (image or video) of every sample is resampled independently to
 * `numLatents` visual tokens.
 *
 * ```text
 * x: [b, T, F, v, d]   (T media, F frames each, v tokens per frame)
 * x += frame_embs[:F]                 (if maxNumFrames)
 * x = x.reshape(b, T, F·v, d)         (frame-major)
 * x += media_time_embs[:T]            (if maxNumMedia)
 * lat = latents repeated to [b, T, n, d]
 * per layer: lat += PerceiverAttention(x, lat); lat += FeedForward(lat)
 * return norm(lat)                    [b, T, n, d]
 * ```
 * A rank-3 input `[b, v, d]` is one image per sample (`T = F = 1`); rank 4 `[b, T, v, d]` has
 * `F = 1`. The output is always `[b, T, numLatents, d]`.
 *
 * Relation to {@link PerceiverResampler} (the design's resampler): same idea, a fixed number of
 * learned queries cross-attending to a variable number of vision tokens, and the same names for
 * the sizes (`numQueries`, `numLayers`, `numHeads`; the upstream `numLatents`, `depth`, `heads`
 * are the same values). They differ where OpenFlamingo differs: queries attend to the media
 * tokens *and* the latents, there is no self-attention block and a final LayerNorm, heads have
 * their own width (`dimHead`), the output keeps a media axis (`[b, T, n, d]`; for one image per
 * sample, `tf.squeeze(out, [1])` is `[b, n, d]` as {@link PerceiverResampler} returns), and
 * padded vision tokens are not supported (every media item has `v` tokens).
 *
 * State-dict keys: `latents` `[n, d]`, `frame_embs` `[maxNumFrames, d]`, `media_time_embs`
 * `[maxNumMedia, 1, d]`, `layers.{i}.0.*` ({@link PerceiverAttention}), `layers.{i}.1.{0,1,3}.*`
 * (pre-norm bias-free feed-forward), `norm.{weight,bias}`.
 *
 * @example
 * ```ts
 * const resampler = new FlamingoPerceiverResampler({ dim: 32, depth: 2, dimHead: 8, heads: 4, numLatents: 6, maxNumFrames: 4 });
 * resampler.forward(tf.randomNormal([2, 2, 3, 5, 32])).shape; // [2, 2, 6, 32]  (b, T, F, v, d) → (b, T, n, d)
 * resampler.forward(tf.randomNormal([2, 17, 32])).shape;      // [2, 1, 6, 32]
 * ```
 */
export class FlamingoPerceiverResampler extends Module implements LayerModule {
  /** Name under which `ModuleLayer` (@vlm/core) saves this class. */
  static className = 'FlamingoPerceiverResampler';
  /** Token width. */
  readonly dim: number;
  /** Number of layers. */
  readonly depth: number;
  /** Width of each head. */
  readonly dimHead: number;
  /** Number of heads. */
  readonly heads: number;
  /** Number of latents. */
  readonly numLatents: number;
  /** Same as {@link FlamingoPerceiverResampler.numLatents} ({@link PerceiverResampler}'s name). */
  get numQueries(): number {
    return this.numLatents;
  }
  /** Same as {@link FlamingoPerceiverResampler.depth} ({@link PerceiverResampler}'s name). */
  get numLayers(): number {
    return this.depth;
  }
  /** Same as {@link FlamingoPerceiverResampler.heads} ({@link PerceiverResampler}'s name). */
  get numHeads(): number {
    return this.heads;
  }
  /** Media-time embedding rows, or `undefined` when there are none. */
  readonly maxNumMedia: number | undefined;
  /** Frame embedding rows, or `undefined` when there are none. */
  readonly maxNumFrames: number | undefined;
  /** Feed-forward width multiple. */
  readonly ffMult: number;
  /** `layers.{i}` = `[PerceiverAttention, FeedForward]`. */
  readonly layers: ModuleList<ModuleList>;
  /** The final LayerNorm (`norm`). */
  readonly norm: LayerNorm;
  private readonly blocks: Array<[PerceiverAttention, FeedForward]>;

  constructor(args: FlamingoPerceiverResamplerArgs) {
    super();
    this.dim = args.dim;
    this.depth = eitherName(args, 'depth', 'numLayers') ?? 6;
    this.dimHead = args.dimHead ?? 64;
    this.heads = eitherName(args, 'heads', 'numHeads') ?? 8;
    this.numLatents = eitherName(args, 'numLatents', 'numQueries') ?? 64;
    this.maxNumMedia = args.maxNumMedia ?? undefined;
    this.maxNumFrames = args.maxNumFrames ?? undefined;
    this.ffMult = args.ffMult ?? 4;
    const d = this.dim;
    this.registerParameter('latents', normal([this.numLatents, d]));
    if (this.maxNumFrames !== undefined) this.registerParameter('frame_embs', normal([this.maxNumFrames, d]));
    if (this.maxNumMedia !== undefined) this.registerParameter('media_time_embs', normal([this.maxNumMedia, 1, d]));
    this.blocks = Array.from({ length: this.depth }, () => [
      new PerceiverAttention({ dim: d, dimHead: this.dimHead, heads: this.heads }),
      new FeedForward({ dim: d, mult: this.ffMult, bias: false, preNorm: true }),
    ]);
    this.layers = this.registerModule('layers', new ModuleList(this.blocks.map((pair) => new ModuleList<Module>(pair))));
    this.norm = this.registerModule('norm', new LayerNorm({ dim: d }));
  }

  /** The learned latents `[numLatents, dim]`. */
  get latents(): tf.Variable {
    return this.parameter('latents');
  }

  /**
   * @param x `[batch, media, frames, tokens, dim]`, or `[batch, media, tokens, dim]` (one frame),
   *   or `[batch, tokens, dim]` (one image).
   * @returns `[batch, media, numLatents, dim]`
   */
  forward(x: tf.Tensor): tf.Tensor {
    if (!(x instanceof tf.Tensor)) throw new Error(`FlamingoPerceiverResampler input: expected a tf.Tensor [batch, T, F, tokens, ${this.dim}], got ${x === null ? 'null' : typeof x}`);
    assertDtype(x, ['float32'], 'FlamingoPerceiverResampler input');
    const [b, T, F, v] = this.inputDims(x.shape);
    const d = this.dim;
    return tf.tidy(() => {
      let h = tf.reshape(x, [b, T, F, v, d]);
      if (this.maxNumFrames !== undefined) {
        h = tf.add(h, tf.reshape(tf.slice(this.parameter('frame_embs'), [0, 0], [F, d]), [1, 1, F, 1, d]));
      }
      h = tf.reshape(h, [b, T, F * v, d]);
      if (this.maxNumMedia !== undefined) h = tf.add(h, tf.slice(this.parameter('media_time_embs'), [0, 0, 0], [T, 1, d]));
      // Every (sample, media) pair is independent: fold T into the batch.
      const media = tf.reshape(h, [b * T, F * v, d]);
      let lat: tf.Tensor = tf.tile(tf.reshape(this.latents, [1, this.numLatents, d]), [b * T, 1, 1]);
      for (const [attn, ff] of this.blocks) {
        lat = tf.add(attn.forward(media, lat), lat);
        lat = tf.add(ff.forward(lat), lat);
      }
      return tf.reshape(this.norm.forward(lat), [b, T, this.numLatents, d]);
    });
  }

  /** `[b, T, F, v, dim]` (or rank 3/4) → `[b, T, numLatents, dim]`. */
  computeOutputShape(inputShape: SymbolicShape | SymbolicShape[]): SymbolicShape {
    const x = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as SymbolicShape;
    return [x[0] ?? null, x.length === 3 ? 1 : (x[1] ?? null), this.numLatents, this.dim];
  }

  /** The constructor arguments, defaults filled in. */
  getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      dim: this.dim,
      depth: this.depth,
      dimHead: this.dimHead,
      heads: this.heads,
      numLatents: this.numLatents,
      ffMult: this.ffMult,
    };
    if (this.maxNumMedia !== undefined) config.maxNumMedia = this.maxNumMedia;
    if (this.maxNumFrames !== undefined) config.maxNumFrames = this.maxNumFrames;
    return config;
  }

  private inputDims(shape: number[]): [number, number, number, number] {
    const d = this.dim;
    const expected = `[batch, media, frames, tokens, dim=${d}] (or [batch, media, tokens, dim=${d}] or [batch, tokens, dim=${d}])`;
    if (shape.length < 3 || shape.length > 5 || shape[shape.length - 1] !== d) {
      throw new Error(`FlamingoPerceiverResampler input: expected shape ${expected}, got ${formatShape(shape)}`);
    }
    const [b, T, F, v] =
      shape.length === 3 ? [shape[0]!, 1, 1, shape[1]!] : shape.length === 4 ? [shape[0]!, shape[1]!, 1, shape[2]!] : (shape as [number, number, number, number]);
    if (this.maxNumFrames !== undefined && F > this.maxNumFrames) {
      throw new Error(`FlamingoPerceiverResampler input: expected shape [batch, media, frames<=${this.maxNumFrames}, tokens, dim=${d}] (maxNumFrames), got ${formatShape(shape)}`);
    }
    if (this.maxNumMedia !== undefined && T > this.maxNumMedia) {
      throw new Error(`FlamingoPerceiverResampler input: expected shape [batch, media<=${this.maxNumMedia}, frames, tokens, dim=${d}] (maxNumMedia), got ${formatShape(shape)}`);
    }
    return [b, T, F, v];
  }
}

registerModuleClass(FlamingoPerceiverResampler);

/** The value given under the upstream name or its alias; both given and different is an error. */
function eitherName(args: FlamingoPerceiverResamplerArgs, upstream: 'depth' | 'heads' | 'numLatents', alias: 'numLayers' | 'numHeads' | 'numQueries'): number | undefined {
  const a = args[upstream];
  const b = args[alias];
  if (a !== undefined && b !== undefined && a !== b) {
    throw new Error(`FlamingoPerceiverResampler: ${upstream} (${a}) and ${alias} (${b}) name the same size; give one of them`);
  }
  return a ?? b;
}
