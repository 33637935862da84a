import * as tf from '@tensorflow/tfjs-core';
import { gelu } from '@vlm/core';
import type { ConfigReader } from './config-reader';

/**
 * Hugging Face activation names (`ACT2FN` keys) this package implements:
 * `gelu` (erf), `gelu_new` / `gelu_pytorch_tanh` / `gelu_fast` (tanh form), `quick_gelu`,
 * `relu`, `silu` / `swish`.
 */
export const SUPPORTED_ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'quick_gelu', 'relu', 'silu', 'swish'] as const;

/** One of {@link SUPPORTED_ACTIVATIONS}. */
export type ActivationName = (typeof SUPPORTED_ACTIVATIONS)[number];

/**
 * Applies the activation named as in a Hugging Face config.
 *
 * @example
 * ```ts
 * applyActivation('gelu_new', tf.zeros([2, 5, 128])).shape; // [2, 5, 128]
 * ```
 */
export function applyActivation(name: ActivationName, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu':
      return gelu(x, 'none');
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return gelu(x, 'tanh');
    case 'quick_gelu':
      return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(1.702, x))));
    case 'relu':
      return tf.relu(x);
    case 'silu':
    case 'swish':
      return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
  }
}

/**
 * Reads an activation field of a config; an unknown name throws an `Error` naming the field.
 *
 * @example
 * ```ts
 * readActivation(new ConfigReader({ hidden_act: 'silu' }, 'llama'), 'hidden_act', 'silu'); // 'silu'
 * ```
 */
export function readActivation(reader: ConfigReader, field: string, fallback: ActivationName): ActivationName {
  return reader.oneOf(field, SUPPORTED_ACTIVATIONS, fallback);
}
