import * as tf from '@tensorflow/tfjs-core';
import { Module, ModuleList, assertDtype, assertShape, normal, registerModuleClass, type LayerModule, type SymbolicShape } from '@vlm/core';
import { PerceiverResamplerLayer } from './perceiver-resampler-layer';

/** Constructor arguments of {@link PerceiverResampler} (PyTorch: `dim, n_queries, n_layers, n_heads`). */
export interface PerceiverResamplerArgs {
  /** Width of the vision tokens, of the learned queries and of the output. */
  dim: number;
  /** Number of learned queries, i.e. of visual tokens out. Default: `64`. */
  numQueries?: number;
  /** Number of {@link PerceiverResamplerLayer}s. Default: `6`. */
  numLayers?: number;
  /** Heads of every attention; `dim` must be divisible by it. Default: `8`. */
  numHeads?: number;
}

/**
 * The design's Perceiver Resampler: a variable number of vision tokens in, a fixed number of
 * visual tokens out. Learned queries go through `numLayers` {@link PerceiverResamplerLayer}s
 * (pre-norm cross-attention to the vision tokens, pre-norm self-attention, pre-norm MLP, all
 * residual, `torch.nn.MultiheadAttention` weights); there is no final norm.
 *
 * Images with different token counts go in one batch padded to the longest, with a
 * `keyPaddingMask` (true = padding; see {@link padVisionTokens}): each image then gets exactly
 * the result it gets alone. Padded positions are never read (not even a NaN there leaks).
 *
 * {@link FlamingoPerceiverResampler} is OpenFlamingo's variant of the same idea, with the same
 * size names (`numQueries`, `numLayers`, `numHeads`) besides its upstream ones; see there for how
 * the two differ.
 *
 * State-dict keys (PyTorch `SeedPerceiverResampler`): `queries` `[1, numQueries, dim]` and
 * `layers.{i}.…` as in {@link PerceiverResamplerLayer}.
 *
 * @example
 * ```ts
 * const resampler = new PerceiverResampler({ dim: 32, numQueries: 8, numLayers: 2, numHeads: 4 });
 * const { features, keyPaddingMask } = padVisionTokens([tf.randomNormal([17, 32]), tf.randomNormal([5, 32])]);
 * features.shape;                                         // [2, 17, 32]
 * resampler.forward(features, keyPaddingMask).shape;      // [2, 8, 32]
 * ```
 */
export class PerceiverResampler extends Module implements LayerModule {
  /** Name under which `ModuleLayer` (@vlm/core) saves this class. */
  static className = 'PerceiverResampler';
  /** Token width. */
  readonly dim: number;
  /** Number of learned queries. */
  readonly numQueries: number;
  /** Number of layers. */
  readonly numLayers: number;
  /** Heads per attention. */
  readonly numHeads: number;
  /** The layers (`layers.{i}`). */
  readonly layers: ModuleList<PerceiverResamplerLayer>;

  constructor(args: PerceiverResamplerArgs) {
    super();
    this.dim = args.dim;
    this.numQueries = args.numQueries ?? 64;
    this.numLayers = args.numLayers ?? 6;
    this.numHeads = args.numHeads ?? 8;
    this.registerParameter('queries', tf.tidy(() => tf.mul(normal([1, this.numQueries, this.dim]), 0.02)));
    this.layers = this.registerModule(
      'layers',
      new ModuleList(Array.from({ length: this.numLayers }, () => new PerceiverResamplerLayer({ dim: this.dim, numHeads: this.numHeads }))),
    );
  }

  /** The learned queries `[1, numQueries, dim]`. */
  get queries(): tf.Variable {
    return this.parameter('queries');
  }

  /**
   * @param visionFeatures `[batch, tokens, dim]`
   * @param keyPaddingMask optional `[batch, tokens]`, bool or numeric: **true / non-zero marks a
   *   padded token** (PyTorch's `key_padding_mask`).
   * @returns `[batch, numQueries, dim]`
   */
  forward(visionFeatures: tf.Tensor, keyPaddingMask?: tf.Tensor): tf.Tensor {
    assertShape(visionFeatures, [null, null, this.dim], 'PerceiverResampler visionFeatures', ['batch', 'tokens', 'dim']);
    assertDtype(visionFeatures, ['float32'], 'PerceiverResampler visionFeatures');
    const [b, n] = visionFeatures.shape as [number, number, number];
    if (keyPaddingMask) assertShape(keyPaddingMask, [b, n], 'PerceiverResampler keyPaddingMask', ['batch', 'tokens']);
    return tf.tidy(() => {
      let vision = visionFeatures;
      let pad: tf.Tensor | undefined;
      if (keyPaddingMask) {
        pad = keyPaddingMask.dtype === 'bool' ? keyPaddingMask : tf.notEqual(keyPaddingMask, 0);
        // Padded tokens are masked as keys; zeroing them also keeps NaN/Inf padding out of 0·v.
        vision = tf.where(tf.reshape(pad, [b, n, 1]), tf.zerosLike(vision), vision);
      }
      let q: tf.Tensor = tf.tile(this.queries, [b, 1, 1]); // [b, nq, d]
      for (const layer of this.layers) q = layer.forward(q, vision, pad);
      return q;
    });
  }

  /** `[batch, tokens, dim]` (and the mask's shape) → `[batch, numQueries, dim]`. */
  computeOutputShape(inputShape: SymbolicShape | SymbolicShape[]): SymbolicShape {
    const x = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as SymbolicShape;
    return [x[0] ?? null, this.numQueries, this.dim];
  }

  /** The constructor arguments, defaults filled in. */
  getConfig(): tf.serialization.ConfigDict {
    return { dim: this.dim, numQueries: this.numQueries, numLayers: this.numLayers, numHeads: this.numHeads };
  }
}

registerModuleClass(PerceiverResampler);
