import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, test } from 'vitest';
import { selectBackend } from '@vlm/core';

const initial = process.env.VLM_BACKEND ?? 'cpu';
afterAll(async () => {
  await tf.setBackend(initial);
});

test('selectBackend falls through webgpu and webgl (no GPU in Node) to wasm', async () => {
  const name = await selectBackend(['webgpu', 'webgl', 'wasm', 'cpu']);
  expect(name).toBe('wasm');
  expect(tf.getBackend()).toBe('wasm');
  const y = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]));
  expect(Array.from(y.dataSync())).toEqual([19, 22, 43, 50]);
});

test('selectBackend takes cpu when asked first, and explains every failure when nothing starts', async () => {
  expect(await selectBackend(['cpu', 'wasm'])).toBe('cpu');
  await expect(selectBackend(['webgpu'])).rejects.toThrow(/none of \[webgpu\] could start:\n {2}webgpu: /);
});
