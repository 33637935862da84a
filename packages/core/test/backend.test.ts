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

test('a browser bundle of @vlm/core holds only the backends the app imports', async () => {
  const { build } = await import('esbuild');
  const { resolve } = await import('node:path');
  const core = resolve(__dirname, '../src/index.ts');
  const bundle = async (imports: string) => {
    const result = await build({
      stdin: { contents: `${imports}\nimport { selectBackend, Linear } from ${JSON.stringify(core)};\nconsole.log(selectBackend, Linear);`, resolveDir: __dirname, loader: 'ts' },
      bundle: true, format: 'esm', platform: 'browser', write: false, metafile: true, logLevel: 'silent',
    });
    return Object.keys(result.metafile.inputs).filter((f) => /tfjs-backend-/.test(f)).map((f) => /tfjs-backend-(\w+)/.exec(f)![1]);
  };
  expect(new Set(await bundle(''))).toEqual(new Set());
  expect(new Set(await bundle(`import '@tensorflow/tfjs-backend-cpu';`))).toEqual(new Set(['cpu']));
});

test('selectBackend explains how to register a backend it cannot import', async () => {
  await expect(selectBackend(['cpu'], { wasmPaths: '/x/' })).resolves.toBe('cpu');
  await expect(selectBackend(['nope' as 'cpu'])).rejects.toThrow(/unknown backend 'nope'/);
});
