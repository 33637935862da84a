import * as tf from '@tensorflow/tfjs-core';
import { Module, gelu } from '@vlm/core';

/**
 * QuickGELU, the activation of OpenAI's CLIP (`hidden_act: "quick_gelu"`, open_clip
 * `quick_gelu: true`): `x · σ(1.702·x)`.
 *
 * @example
 * ```ts
 * quickGelu(tf.tensor1d([-1, 0, 1])); // [-0.1543, 0, 0.8457]
 * ```
 */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(1.702, x))));
}

/**
 * {@link quickGelu} as a weightless module (open_clip's `QuickGELU`), for a `Sequential`
 * slot or an MLP's activation.
 *
 * @example
 * ```ts
 * new QuickGELU().forward(tf.zeros([2, 17, 128])).shape; // [2, 17, 128]
 * ```
 */
export class QuickGELU extends Module {
  /** Elementwise QuickGELU. */
  forward(x: tf.Tensor): tf.Tensor {
    return quickGelu(x);
  }
}

/** The activations a frozen vision tower may use, by their Hugging Face `hidden_act` names. */
export type VisionActivation = 'quick_gelu' | 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'relu';

/** The `hidden_act` values {@link visionActivationFn} accepts. */
export const SUPPORTED_VISION_ACTIVATIONS: readonly VisionActivation[] = ['quick_gelu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu'];

/**
 * The elementwise function behind a Hugging Face `hidden_act` name: `gelu` is the exact erf
 * form, `gelu_new` / `gelu_pytorch_tanh` the tanh form, `quick_gelu` is {@link quickGelu}.
 *
 * @example
 * ```ts
 * const act = visionActivationFn('quick_gelu');
 * act(tf.zeros([2, 17, 64])).shape; // [2, 17, 64]
 * ```
 */
export function visionActivationFn(name: VisionActivation): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'quick_gelu':
      return quickGelu;
    case 'gelu':
      return (x) => gelu(x, 'none');
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return (x) => gelu(x, 'tanh');
    case 'relu':
      return (x) => tf.relu(x);
    default:
      throw new Error(`unsupported activation '${String(name)}' (supported: ${SUPPORTED_VISION_ACTIVATIONS.join(', ')})`);
  }
}
