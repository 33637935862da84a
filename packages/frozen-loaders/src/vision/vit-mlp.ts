import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module } from '@vlm/core';

/** Constructor arguments of {@link VitMlp}. */
export interface VitMlpArgs {
  /** Input and output width. */
  dim: number;
  /** Hidden width. */
  hiddenDim: number;
  /** The elementwise activation between the two Linears. */
  activation: (x: tf.Tensor) => tf.Tensor;
  /** Child names of the two Linears: `['fc1', 'fc2']` (Hugging Face) or `['c_fc', 'c_proj']` (open_clip). Default: HF's. */
  names?: readonly [string, string];
}

/**
 * A transformer MLP `fc2(act(fc1(x)))` whose Linears carry the checkpoint's own names, so the
 * state-dict keys are `fc1.weight` … (HF CLIP / BLIP-2) or `c_fc.weight` … (open_clip).
 *
 * @example
 * ```ts
 * const mlp = new VitMlp({ dim: 32, hiddenDim: 128, activation: quickGelu, names: ['c_fc', 'c_proj'] });
 * Object.keys(mlp.stateDictShapes()); // ['c_fc.weight', 'c_fc.bias', 'c_proj.weight', 'c_proj.bias']
 * mlp.forward(tf.zeros([2, 17, 32])).shape; // [2, 17, 32]
 * ```
 */
export class VitMlp extends Module {
  /** The first Linear, `dim → hiddenDim` (weight `[hiddenDim, dim]`), registered as HF `fc1` or open_clip `c_fc`. */
  readonly fc1: Linear;
  /** The second Linear, `hiddenDim → dim` (weight `[dim, hiddenDim]`), registered as HF `fc2` or open_clip `c_proj`. */
  readonly fc2: Linear;
  /** The elementwise activation applied between `fc1` and `fc2`. */
  readonly activation: (x: tf.Tensor) => tf.Tensor;

  constructor(args: VitMlpArgs) {
    super();
    const [n1, n2] = args.names ?? ['fc1', 'fc2'];
    this.fc1 = this.registerModule(n1, new Linear({ inFeatures: args.dim, outFeatures: args.hiddenDim }));
    this.fc2 = this.registerModule(n2, new Linear({ inFeatures: args.hiddenDim, outFeatures: args.dim }));
    this.activation = args.activation;
  }

  /** `[..., dim] → [..., dim]`. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(this.activation(this.fc1.forward(x))));
  }
}
