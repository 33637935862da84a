import * as tf from '@tensorflow/tfjs-core';
import { FeedForward, Module, assertDtype, assertShape, registerModuleClass, type LayerModule, type SymbolicShape } from '@vlm/core';
import { MaskedCrossAttention, type MediaForwardOptions } from './masked-cross-attention';

/**
 * Constructor arguments of {@link GatedCrossAttentionBlock} (PyTorch: `dim, dim_visual, dim_head,
 * heads, ff_mult, only_attend_immediate_media`).
 */
export interface GatedCrossAttentionBlockArgs {
  /** Width of the text hidden states (the LM's hidden size). */
  dim: number;
  /** Width of the visual tokens (the resampler's output width). */
  dimVisual: number;
  /** Width of each attention head. Default: `64`. */
  dimHead?: number;
  /** Number of attention heads. Default: `8`. */
  heads?: number;
  /** Feed-forward hidden width as a multiple of `dim`. Default: `4`. */
  ffMult?: number;
  /** See {@link MaskedCrossAttentionArgs.onlyAttendImmediateMedia}. Default: `true`. */
  onlyAttendImmediateMedia?: boolean;
}

/** What {@link GatedCrossAttentionBlock.residualUpdates} returns, each `[batch, tokens, dim]`. */
export interface BlockResidualUpdates {
  /** `tanh(attn_gate) · attn(x, media)`: the gated cross-attention update. */
  attn: tf.Tensor;
  /** `x + attn`: what the feed-forward reads and its update is added to. */
  afterAttn: tf.Tensor;
  /** `tanh(ff_gate) · ff(afterAttn)`: the gated feed-forward update. */
  ff: tf.Tensor;
  /** `afterAttn + ff`: the block's output. */
  output: tf.Tensor;
}

/** `tanh` of the two gates of a {@link GatedCrossAttentionBlock}. */
export interface BlockGateValues {
  /** `tanh(attn_gate)`. */
  attn: number;
  /** `tanh(ff_gate)`. */
  ff: number;
}

/**
 * Flamingo's gated cross-attention block (OpenFlamingo's `GatedCrossAttentionBlock`), inserted
 * before a frozen LM layer:
 *
 * ```text
 * x = attn(x, media, media_locations) · tanh(attn_gate) + x     masked cross-attention
 * x = ff(x) · tanh(ff_gate) + x                                 LayerNorm, Linear, GELU, Linear (no biases)
 * ```
 * Both gates start at 0, so a new block is an exact identity (bit for bit). The feed-forward
 * branch applies to every token; the attention branch is exactly 0 for tokens before the first
 * image, in both masking modes (see {@link MaskedCrossAttention}).
 *
 * State-dict keys: `attn_gate` `[1]`, `ff_gate` `[1]`, `attn.norm.*`, `attn.to_q.weight`,
 * `attn.to_kv.weight`, `attn.to_out.weight`, `ff.0.{weight,bias}` (LayerNorm), `ff.1.weight`
 * `[ffMult·dim, dim]`, `ff.3.weight` `[dim, ffMult·dim]`.
 *
 * @example
 * ```ts
 * const block = new GatedCrossAttentionBlock({ dim: 32, dimVisual: 24, dimHead: 8, heads: 4 });
 * const x = tf.randomNormal([1, 5, 32]);              // text hidden states
 * const media = tf.randomNormal([1, 2, 6, 24]);       // 2 images × 6 visual tokens
 * const loc = tf.tensor2d([[0, 1, 0, 1, 0]], undefined, 'bool');
 * const y = block.forward(x, media, loc);             // [1, 5, 32]; equal to x while both gates are 0
 * block.gateValues();                                 // { attn: 0, ff: 0 }
 * ```
 */
export class GatedCrossAttentionBlock extends Module implements LayerModule {
  /** Name under which `ModuleLayer` (@vlm/core) saves this class. */
  static className = 'GatedCrossAttentionBlock';
  /** Text width. */
  readonly dim: number;
  /** Visual width. */
  readonly dimVisual: number;
  /** Width of each head. */
  readonly dimHead: number;
  /** Number of heads. */
  readonly heads: number;
  /** Feed-forward width multiple. */
  readonly ffMult: number;
  /** Immediate-media (true) or all-previous-media (false) masking. */
  readonly onlyAttendImmediateMedia: boolean;
  /** The masked cross-attention (`attn`). */
  readonly attn: MaskedCrossAttention;
  /** The pre-norm, bias-free feed-forward (`ff`). */
  readonly ff: FeedForward;

  constructor(args: GatedCrossAttentionBlockArgs) {
    super();
    this.dim = args.dim;
    this.dimVisual = args.dimVisual;
    this.dimHead = args.dimHead ?? 64;
    this.heads = args.heads ?? 8;
    this.ffMult = args.ffMult ?? 4;
    this.onlyAttendImmediateMedia = args.onlyAttendImmediateMedia ?? true;
    this.attn = this.registerModule(
      'attn',
      new MaskedCrossAttention({
        dim: this.dim,
        dimVisual: this.dimVisual,
        dimHead: this.dimHead,
        heads: this.heads,
        onlyAttendImmediateMedia: this.onlyAttendImmediateMedia,
      }),
    );
    this.registerParameter('attn_gate', tf.zeros([1]));
    this.ff = this.registerModule('ff', new FeedForward({ dim: this.dim, mult: this.ffMult, bias: false, preNorm: true }));
    this.registerParameter('ff_gate', tf.zeros([1]));
  }

  /** The attention gate `[1]` (before tanh). */
  get attnGate(): tf.Variable {
    return this.parameter('attn_gate');
  }

  /** The feed-forward gate `[1]` (before tanh). */
  get ffGate(): tf.Variable {
    return this.parameter('ff_gate');
  }

  /**
   * @param x text hidden states `[batch, tokens, dim]`
   * @param media visual tokens `[batch, T, m, dimVisual]`
   * @param mediaLocations optional `[batch, tokens]`, non-zero at `<image>` tokens (without it
   *   every token attends to all media)
   * @returns `[batch, tokens, dim]`
   */
  forward(x: tf.Tensor, media: tf.Tensor, mediaLocations?: tf.Tensor): tf.Tensor {
    return this.forwardWithOptions(x, media, { mediaLocations });
  }

  /**
   * {@link GatedCrossAttentionBlock.forward} with every option: `useCachedMedia` (generation
   * with cached media: every token attends to the last image of `mediaLocations`) or a mask
   * precomputed by {@link mediaAttentionMask} (once per forward pass for all blocks).
   * @param x `[batch, tokens, dim]`
   * @param media `[batch, T, m, dimVisual]`
   * @returns `[batch, tokens, dim]`
   */
  forwardWithOptions(x: tf.Tensor, media: tf.Tensor, options: MediaForwardOptions = {}): tf.Tensor {
    this.checkInputs(x, media);
    return tf.tidy(() => this.gatedUpdates(x, media, options).output);
  }

  /**
   * The block's forward, keeping its two gated updates (for gate analysis: how much each gated
   * path adds to the hidden states, beyond the value of `tanh(α)`). Same arguments and the same
   * `output` as {@link GatedCrossAttentionBlock.forwardWithOptions}.
   *
   * @example
   * ```ts
   * const { attn, ff, output } = block.residualUpdates(x, media, { mediaLocations });
   * ```
   */
  residualUpdates(x: tf.Tensor, media: tf.Tensor, options: MediaForwardOptions = {}): BlockResidualUpdates {
    this.checkInputs(x, media);
    return tf.tidy(() => this.gatedUpdates(x, media, options) as unknown as tf.TensorContainer) as unknown as BlockResidualUpdates;
  }

  private checkInputs(x: tf.Tensor, media: tf.Tensor): void {
    assertShape(x, [null, null, this.dim], 'GatedCrossAttentionBlock x', ['batch', 'tokens', 'dim']);
    assertDtype(x, ['float32'], 'GatedCrossAttentionBlock x');
    assertShape(media, [x.shape[0]!, null, null, this.dimVisual], 'GatedCrossAttentionBlock media', ['batch', 'T', 'm', 'dimVisual']);
    assertDtype(media, ['float32'], 'GatedCrossAttentionBlock media');
  }

  private gatedUpdates(x: tf.Tensor, media: tf.Tensor, options: MediaForwardOptions): BlockResidualUpdates {
    const attn = tf.mul(this.attn.forwardWithOptions(x, media, options), tf.tanh(this.attnGate));
    const afterAttn = tf.add(attn, x);
    const ff = tf.mul(this.ff.forward(afterAttn), tf.tanh(this.ffGate));
    return { attn, afterAttn, ff, output: tf.add(ff, afterAttn) };
  }

  /** `tanh` of both gates, read back to JS numbers. */
  gateValues(): BlockGateValues {
    const t = tf.tidy(() => tf.tanh(tf.concat([this.attnGate, this.ffGate])));
    const [attn, ff] = t.dataSync();
    t.dispose();
    return { attn: attn!, ff: ff! };
  }

  /**
   * {@link GatedCrossAttentionBlock.gateValues} read with `await` (no synchronous read-back).
   *
   * @example
   * ```ts
   * await block.gateValuesAsync(); // { attn: 0, ff: 0 } for a new block
   * ```
   */
  async gateValuesAsync(): Promise<BlockGateValues> {
    const t = tf.tidy(() => tf.tanh(tf.concat([this.attnGate, this.ffGate])));
    try {
      const [attn, ff] = await t.data();
      return { attn: attn!, ff: ff! };
    } finally {
      t.dispose();
    }
  }

  /** `[x, media, mediaLocations]` shapes → the shape of `x`. */
  computeOutputShape(inputShape: SymbolicShape | SymbolicShape[]): SymbolicShape {
    const x = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as SymbolicShape;
    return [...x];
  }

  /** The constructor arguments, defaults filled in. */
  getConfig(): tf.serialization.ConfigDict {
    return {
      dim: this.dim,
      dimVisual: this.dimVisual,
      dimHead: this.dimHead,
      heads: this.heads,
      ffMult: this.ffMult,
      onlyAttendImmediateMedia: this.onlyAttendImmediateMedia,
    };
  }
}

registerModuleClass(GatedCrossAttentionBlock);
