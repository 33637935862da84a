import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readSafetensors } from '@vlm/core';
import { expect } from 'vitest';

/** The repo's vendored golden/ folder (never ../shared). */
export const GOLDEN_DIR = resolve(__dirname, '../../../golden');

/** A vendored backbone case: sidecar, every tensor, the weights alone and the raw bytes. */
export interface LMCase {
  config: Record<string, unknown>;
  sidecar: Record<string, any>;
  tensors: Record<string, tf.Tensor>;
  /** Tensors that are neither `input.*` nor `output.*`, under their HF keys. */
  weights: Record<string, tf.Tensor>;
  bytes: Uint8Array;
  dispose(): void;
}

/** Reads `golden/backbone_<name>.{json,safetensors}`. */
export function readLMCase(name: string): LMCase {
  const stem = resolve(GOLDEN_DIR, `backbone_${name}`);
  const bytes = new Uint8Array(readFileSync(`${stem}.safetensors`));
  const sidecar = JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as Record<string, any>;
  const { tensors } = readSafetensors(bytes, { source: name });
  const weights = Object.fromEntries(Object.entries(tensors).filter(([k]) => !k.startsWith('input.') && !k.startsWith('output.')));
  return { config: sidecar.config, sidecar, tensors, weights, bytes, dispose: () => tf.dispose(Object.values(tensors)) };
}

/** `|got − want| ≤ atol + rtol·|want|` everywhere, optionally only where `keep` (broadcastable) is non-zero. */
export function expectClose(got: tf.Tensor, want: tf.Tensor, what: string, tol = { atol: 1e-4, rtol: 1e-4 }, keep?: tf.Tensor): void {
  expect(got.shape, `${what} shape`).toEqual(want.shape);
  const worst = tf.tidy(() => {
    let err = tf.abs(tf.sub(tf.cast(got, 'float32'), tf.cast(want, 'float32')));
    if (keep) err = tf.mul(err, tf.cast(tf.notEqual(keep, 0), 'float32'));
    return tf.max(tf.div(err, tf.add(tol.atol, tf.mul(tol.rtol, tf.abs(want))))).dataSync()[0]!;
  });
  expect(worst, `${what}: worst error / tolerance`).toBeLessThanOrEqual(1);
}

/** Values of a tensor as nested arrays. */
export const rows = (t: tf.Tensor): number[][] => t.arraySync() as number[][];
