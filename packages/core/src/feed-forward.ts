import { Sequential, type UnaryModule } from './sequential';
import { Linear } from './linear';
import { LayerNorm } from './layer-norm';
import { GELU, type GeluApproximation } from './gelu';

/** Constructor arguments of {@link FeedForward}. */
export interface FeedForwardArgs {
  /** Input and output width. */
  dim: number;
  /** Hidden width. Default: `dim * mult`. */
  hiddenDim?: number;
  /** Hidden width as a multiple of `dim`, when `hiddenDim` is not given. Default: `4`. */
  mult?: number;
  /** Biases on both Linear layers. Default: `true`. */
  bias?: boolean;
  /** Put a LayerNorm first, inside the block (Flamingo's `FeedForward`). Default: `false`. */
  preNorm?: boolean;
  /** LayerNorm epsilon when `preNorm`. Default: `1e-5`. */
  eps?: number;
  /** GELU form. Default: `'none'` (exact erf). */
  approximate?: GeluApproximation;
}

/**
 * The transformer MLP as a {@link Sequential}, with PyTorch's child indices:
 * `Linear, GELU, Linear` (keys `0.*`, `2.*`), or with `preNorm`
 * `LayerNorm, Linear, GELU, Linear` (keys `0.*`, `1.*`, `3.*`, as Flamingo's `FeedForward`).
 *
 * @example
 * ```ts
 * const ff = new FeedForward({ dim: 32, mult: 4, bias: false, preNorm: true });
 * Object.keys(ff.stateDictShapes()); // ['0.weight', '0.bias', '1.weight', '3.weight']
 * ff.forward(tf.zeros([2, 6, 32])).shape; // [2, 6, 32]
 * ```
 */
export class FeedForward extends Sequential {
  constructor(args: FeedForwardArgs) {
    const hidden = args.hiddenDim ?? Math.trunc(args.dim * (args.mult ?? 4));
    const bias = args.bias ?? true;
    const layers: UnaryModule[] = [];
    if (args.preNorm) layers.push(new LayerNorm({ dim: args.dim, eps: args.eps }));
    layers.push(
      new Linear({ inFeatures: args.dim, outFeatures: hidden, bias }),
      new GELU(args.approximate ?? 'none'),
      new Linear({ inFeatures: hidden, outFeatures: args.dim, bias }),
    );
    super(layers);
  }
}
