import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Module, MultiHeadAttention, assertDtype, assertShape, registerModuleClass, type LayerModule, type SymbolicShape } from '@vlm/core';

/** Constructor arguments of {@link GatedCrossAttention} (PyTorch: `dim, n_heads`). */
export interface GatedCrossAttentionArgs {
  /** Width of the text hidden states and of the visual tokens. */
  dim: number;
  /** Attention heads; `dim` must be divisible by it. Default: `8`. */
  numHeads?: number;
}

/**
 * The design's tanh-gated cross-attention: text hidden states attend to visual tokens.
 *
 * ```text
 * out = x + tanh(gate) · MHA(LN(x), visual, visual)     keys/values: the raw visual tokens
 * ```
 * `gate` starts at 0, so a new module is an exact identity (bit for bit). No media masking:
 * every token sees every visual token, except those marked in an optional key padding mask.
 *
 * State-dict keys (PyTorch `SeedGatedCrossAttention`): `gate` `[1]`,
 * `cross_attn.{in_proj_weight,in_proj_bias,out_proj.weight,out_proj.bias}`
 * (`torch.nn.MultiheadAttention`), `norm.{weight,bias}`.
 *
 * @example
 * ```ts
 * const xattn = new GatedCrossAttention({ dim: 32, numHeads: 4 });
 * const text = tf.randomNormal([2, 7, 32]), visual = tf.randomNormal([2, 8, 32]);
 * xattn.forward(text, visual).shape; // [2, 7, 32]  (equal to text while the gate is 0)
 * xattn.gateValue();                 // 0
 * ```
 */
export class GatedCrossAttention extends Module implements LayerModule {
  /** Name under which `ModuleLayer` (@vlm/core) saves this class. */
  static className = 'GatedCrossAttention';
  /** Token width. */
  readonly dim: number;
  /** Attention heads. */
  readonly numHeads: number;
  /** Text → visual attention (`cross_attn`). */
  readonly crossAttn: MultiHeadAttention;
  /** Pre-norm of the text (`norm`). */
  readonly norm: LayerNorm;

  constructor(args: GatedCrossAttentionArgs) {
    super();
    this.dim = args.dim;
    this.numHeads = args.numHeads ?? 8;
    this.crossAttn = this.registerModule('cross_attn', new MultiHeadAttention({ embedDim: this.dim, numHeads: this.numHeads }));
    this.norm = this.registerModule('norm', new LayerNorm({ dim: this.dim }));
    this.registerParameter('gate', tf.zeros([1]));
  }

  /** The gate `[1]` (before tanh). */
  get gate(): tf.Variable {
    return this.parameter('gate');
  }

  /**
   * @param textHidden `[batch, textTokens, dim]`
   * @param visualTokens `[batch, visualTokens, dim]`
   * @param keyPaddingMask optional `[batch, visualTokens]`, bool or numeric: true / non-zero
   *   marks a visual token to ignore (PyTorch's `key_padding_mask`).
   * @returns `[batch, textTokens, dim]`
   */
  forward(textHidden: tf.Tensor, visualTokens: tf.Tensor, keyPaddingMask?: tf.Tensor): tf.Tensor {
    assertShape(textHidden, [null, null, this.dim], 'GatedCrossAttention textHidden', ['batch', 'textTokens', 'dim']);
    const b = textHidden.shape[0]!;
    assertShape(visualTokens, [b, null, this.dim], 'GatedCrossAttention visualTokens', ['batch', 'visualTokens', 'dim']);
    assertDtype(textHidden, ['float32'], 'GatedCrossAttention textHidden');
    assertDtype(visualTokens, ['float32'], 'GatedCrossAttention visualTokens');
    if (keyPaddingMask) assertShape(keyPaddingMask, [b, visualTokens.shape[1]!], 'GatedCrossAttention keyPaddingMask', ['batch', 'visualTokens']);
    return tf.tidy(() => {
      const pad = keyPaddingMask && (keyPaddingMask.dtype === 'bool' ? keyPaddingMask : tf.notEqual(keyPaddingMask, 0));
      const cross = this.crossAttn.forward(this.norm.forward(textHidden), visualTokens, visualTokens, { keyPaddingMask: pad });
      return tf.add(textHidden, tf.mul(tf.tanh(this.gate), cross));
    });
  }

  /** `tanh(gate)`, read back to a JS number. */
  gateValue(): number {
    const t = tf.tidy(() => tf.tanh(this.gate));
    const v = t.dataSync()[0]!;
    t.dispose();
    return v;
  }

  /** `[textHidden, visualTokens]` shapes → the shape of `textHidden`. */
  computeOutputShape(inputShape: SymbolicShape | SymbolicShape[]): SymbolicShape {
    const x = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as SymbolicShape;
    return [...x];
  }

  /** The constructor arguments, defaults filled in. */
  getConfig(): tf.serialization.ConfigDict {
    return { dim: this.dim, numHeads: this.numHeads };
  }
}

registerModuleClass(GatedCrossAttention);
