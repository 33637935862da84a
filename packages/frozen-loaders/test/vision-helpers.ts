import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readSafetensors } from '@vlm/core';
import { expect } from 'vitest';

/** The repo's vendored golden/ folder (never ../shared). */
export const GOLDEN_DIR = resolve(__dirname, '../../../golden');

/** A vendored reference case: sidecar, every tensor, the weights alone and the raw file bytes. */
export interface VisionCase {
  sidecar: Record<string, any>;
  tensors: Record<string, tf.Tensor>;
  /** Tensors that are neither `input.*` nor `output.*`, under their checkpoint keys. */
  weights: Record<string, tf.Tensor>;
  /** The `.safetensors` bytes as stored (a valid checkpoint: loaders skip input./output. keys they don't own). */
  bytes: Uint8Array;
  dispose(): void;
}

export function readCase(stem: string): VisionCase {
  const bytes = new Uint8Array(readFileSync(`${stem}.safetensors`));
  const sidecar = JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as Record<string, any>;
  const { tensors } = readSafetensors(bytes, { source: stem });
  const weights = Object.fromEntries(Object.entries(tensors).filter(([k]) => !k.startsWith('input.') && !k.startsWith('output.')));
  return { sidecar, tensors, weights, bytes, dispose: () => tf.dispose(Object.values(tensors)) };
}

/** `|got - want| <= atol + rtol·|want|` everywhere (the golden runner's rule), with a readable failure. */
export function expectClose(got: tf.Tensor, want: tf.Tensor, what: string, atol = 1e-4, rtol = 1e-4): void {
  expect(got.shape, `${what} shape`).toEqual(want.shape);
  const [ratio, maxErr] = tf.tidy(() => {
    const err = tf.abs(tf.sub(got, want));
    return [tf.max(tf.div(err, tf.add(atol, tf.mul(rtol, tf.abs(want))))).dataSync()[0]!, tf.max(err).dataSync()[0]!];
  });
  expect(ratio, `${what}: max error ${maxErr.toExponential(2)} is ${ratio.toFixed(3)}× the tolerance`).toBeLessThanOrEqual(1);
}
