// The worker module (fixtures/worker.mjs) runs in real worker threads with Node's own module
// resolution: it imports the BUILT @vlm/data-parallel, so run `pnpm build` before these tests.
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataParallel, type DataParallelOptions } from '@vlm/data-parallel';
import { mlp, type MlpOptions } from './fixtures/mlp.mjs';

const worker = new URL('./fixtures/worker.mjs', import.meta.url);
if (!existsSync(new URL('../dist/index.js', import.meta.url))) {
  throw new Error('these tests run workers on the built @vlm/data-parallel: run `pnpm build` (or `pnpm --filter @vlm/data-parallel build`) first');
}
const start = (parameters: tf.Variable[], data: { mlp?: MlpOptions; workerMlp?: MlpOptions; fail?: string }, more: Partial<DataParallelOptions> = {}) =>
  DataParallel.start({ worker, workers: 2, parameters, data: { backend: tf.getBackend(), ...data }, ...more });

/** `actual` equals `expected` within `rel` of the largest |expected|. */
function expectClose(actual: tf.Tensor, expected: tf.Tensor, rel = 1e-5) {
  expect(actual.shape).toEqual(expected.shape);
  const [a, e] = [actual.dataSync(), expected.dataSync()];
  let scale = 0;
  let diff = 0;
  e.forEach((v, i) => {
    scale = Math.max(scale, Math.abs(v));
    diff = Math.max(diff, Math.abs(v - a[i]!));
  });
  expect(diff).toBeLessThanOrEqual(rel * scale + 1e-7);
}

/** The batch `[x, y]` of `B` rows (seeded). */
const batch = (B: number, seed = 0) => [tf.randomNormal([B, 6], 0, 1, 'float32', 100 + seed), tf.randomNormal([B, 3], 0, 1, 'float32', 200 + seed)];

/** Checks `dp.grads(inputs)` against `tf.variableGrads` on this thread, and frees both. */
async function expectSingleThreadGrads(dp: DataParallel, model: ReturnType<typeof mlp>, inputs: tf.Tensor[]) {
  const B = inputs[0]!.shape[0]!;
  const ref = tf.variableGrads(() => model.loss(inputs, B), model.parameters);
  const got = await dp.grads(inputs);
  expect(Object.keys(got.grads)).toEqual(Object.keys(ref.grads));
  expectClose(got.value, ref.value);
  for (const name of Object.keys(ref.grads)) expectClose(got.grads[name]!, ref.grads[name]!);
  tf.dispose([got.value, ...Object.values(got.grads), ref.value, ...Object.values(ref.grads)]);
}

describe('DataParallel, 2 workers', () => {
  let model: ReturnType<typeof mlp>;
  let dp: DataParallel;
  beforeAll(async () => {
    model = mlp({ prefix: 'main' });
    dp = await start(model.parameters, { mlp: { prefix: 'main' } });
  });
  afterAll(async () => {
    await dp?.close();
    model?.dispose();
  });

  it('grads of an uneven batch (5 rows: 2 + 3) equal tf.variableGrads on one thread', async () => {
    expect(dp.workers).toBe(2);
    const inputs = batch(5);
    await expectSingleThreadGrads(dp, model, inputs);
    tf.dispose(inputs);
  });

  it('after an SGD step on the main thread, the next call uses the new weights', async () => {
    const inputs = batch(5, 1);
    const sgd = tf.train.sgd(0.5);
    for (let step = 0; step < 2; step++) {
      const { value, grads } = await dp.grads(inputs);
      sgd.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
      await expectSingleThreadGrads(dp, model, inputs);
    }
    sgd.dispose();
    tf.dispose(inputs);
  });

  it('predict equals the forward on one thread, rows in order', async () => {
    const [x] = batch(7, 2);
    const got = await dp.predict([x!]);
    const ref = model.forward([x!]);
    expectClose(got, ref);
    tf.dispose([x!, got, ref]);
  });

  it('a batch of fewer rows than workers uses fewer workers', async () => {
    const inputs = batch(1, 3);
    await expectSingleThreadGrads(dp, model, inputs);
    const got = await dp.predict([inputs[0]!]);
    expect(got.shape).toEqual([1, 3]);
    tf.dispose([...inputs, got]);
  });

  it('leaks no tensor on the main thread or in the workers, calls made together run in order', async () => {
    const inputs = batch(6, 4);
    const run = async () => {
      const [g, y] = await Promise.all([dp.grads(inputs), dp.predict([inputs[0]!]), dp.workerMemory()]);
      tf.dispose([g.value, ...Object.values(g.grads), y]);
    };
    await run(); // first-call allocations (kernels, caches) out of the way
    const main = tf.memory().numTensors;
    const workers = (await dp.workerMemory()).map((m) => m.numTensors);
    await run();
    await run();
    expect(tf.memory().numTensors).toBe(main);
    const after = await dp.workerMemory();
    expect(after.map((m) => m.numTensors)).toEqual(workers);
    expect(after.every((m) => m.numBytes > 0 && (tf.getBackend() !== 'wasm' || m.wasmHeapBytes! > 0))).toBe(true);
    tf.dispose(inputs);
  });

  it('rejects bad inputs with a clear Error', async () => {
    const [x, y] = [tf.zeros([4, 6]), tf.zeros([3, 3])];
    await expect(dp.grads([x, y])).rejects.toThrow(/same batch \(first\) dimension >= 1, got \[4, 6\], \[3, 3\]/);
    await expect(dp.predict([])).rejects.toThrow(/no inputs/);
    tf.dispose([x, y]);
  });
});

describe('DataParallel, microBatch 2', () => {
  it('grads and predict equal one thread', async () => {
    const model = mlp({ prefix: 'micro' });
    const dp = await start(model.parameters, { mlp: { prefix: 'micro' } }, { microBatch: 2 });
    const inputs = batch(5, 5);
    await expectSingleThreadGrads(dp, model, inputs);
    const got = await dp.predict([inputs[0]!]);
    const ref = model.forward([inputs[0]!]);
    expectClose(got, ref);
    await dp.close();
    tf.dispose([...inputs, got, ref]);
    model.dispose();
  });
});

describe('DataParallel, parameter names', () => {
  it("unnamed variables (TF.js's numbered names, different on each thread) match by shape; grads use the main thread's names", async () => {
    tf.variable(tf.zeros([1])).dispose(); // the main thread's numbering now differs from the workers'
    const model = mlp({ prefix: null });
    const dp = await start(model.parameters, { mlp: { prefix: null } });
    const inputs = batch(3, 8);
    await expectSingleThreadGrads(dp, model, inputs);
    await dp.close();
    tf.dispose(inputs);
    model.dispose();
  });

  it('[name, variable] pairs are checked by the pair names', async () => {
    const model = mlp({ prefix: 'pairs' });
    const pairs = model.parameters.map((v, i): [string, tf.Variable] => [`layer.${i}`, v]);
    await expect(DataParallel.start({ worker, workers: 1, parameters: pairs, data: { backend: tf.getBackend(), mlp: { prefix: 'pairs' } } })).rejects.toThrow(
      /parameter 0 is 'layer.0' \[6, 8\] float32 on the main thread but 'pairs\/w1' \[6, 8\] float32 in worker 0/,
    );
    model.dispose();
  });
});

describe('DataParallel errors', () => {
  it('names the first parameter mismatch at start', async () => {
    const model = mlp({ prefix: 'check' });
    await expect(start(model.parameters, { mlp: { prefix: 'check' }, workerMlp: { hidden: 9 } })).rejects.toThrow(
      /parameter 0 is 'check\/w1' \[6, 8\] float32 on the main thread but 'check\/w1' \[6, 9\] float32 in worker 0/,
    );
    await expect(start(model.parameters, { mlp: { prefix: 'check' }, workerMlp: { prefix: 'other' } })).rejects.toThrow(/parameter 0 is 'check\/w1' .* but 'other\/w1'/);
    await expect(start(model.parameters.slice(0, 3), { mlp: { prefix: 'check' } })).rejects.toThrow(/parameter 3 is missing on the main thread but 'check\/b2' \[3\] float32/);
    model.dispose();
  });

  it('a worker module that does not serve rejects start', async () => {
    const model = mlp({ prefix: 'idle' });
    const options = { worker: new URL('./fixtures/not-serving.mjs', import.meta.url), workers: 1, parameters: model.parameters };
    await expect(DataParallel.start(options)).rejects.toThrow(/worker 0 exited unexpectedly \(exit code 0\) before its setup ended \(does the worker module call serveDataParallel\?\)/);
    model.dispose();
  });

  it('an error in setup rejects start with its message', async () => {
    const model = mlp({ prefix: 'setup' });
    await expect(start(model.parameters, { mlp: { prefix: 'setup' }, fail: 'setup' })).rejects.toThrow(/worker 0 failed: Error: setup failed on purpose in worker 0/);
    model.dispose();
  });

  it("an error thrown in a worker's loss rejects the call with its message and stack; the workers go on", async () => {
    const model = mlp({ prefix: 'loss' });
    const dp = await start(model.parameters, { mlp: { prefix: 'loss' }, fail: 'loss' });
    const inputs = batch(4, 6);
    const error = await dp.grads(inputs).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/worker 1 failed: Error: loss failed on purpose\n\s+at /);
    const y = await dp.predict([inputs[0]!]);
    expect(y.shape).toEqual([4, 3]);
    expect((await dp.workerMemory()).map((m) => m.numTensors)).toEqual([4, 4]); // the parameters only
    await dp.close();
    tf.dispose([...inputs, y]);
    model.dispose();
  });

  it('a worker that exits rejects the pending call and later ones', async () => {
    const model = mlp({ prefix: 'exit' });
    const dp = await start(model.parameters, { mlp: { prefix: 'exit' }, fail: 'exit' });
    const inputs = batch(4, 7);
    await expect(dp.grads(inputs)).rejects.toThrow(/worker 1 exited unexpectedly \(exit code 3\)/);
    await expect(dp.predict([inputs[0]!])).rejects.toThrow(/worker 1 exited unexpectedly/);
    await dp.close();
    await expect(dp.predict([inputs[0]!])).rejects.toThrow(/closed/);
    tf.dispose(inputs);
    model.dispose();
  });
});

describe('DataParallel timeouts: nothing hangs', () => {
  it('a worker module that never serves (and never ends) rejects start after startTimeoutMs, naming the worker', async () => {
    const model = mlp({ prefix: 'silent' });
    const options = { worker: new URL('./fixtures/silent.mjs', import.meta.url), workers: 1, parameters: model.parameters, startTimeoutMs: 1500 };
    const t0 = Date.now();
    await expect(DataParallel.start(options)).rejects.toThrow(
      /DataParallel\.start: worker 0 did not finish its setup within 1500 ms \(startTimeoutMs\): does the worker module call serveDataParallel, and does its setup resolve\?/,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    model.dispose();
  });

  it('a setup that never resolves rejects start after startTimeoutMs', async () => {
    const model = mlp({ prefix: 'slow' });
    await expect(start(model.parameters, { mlp: { prefix: 'slow' }, fail: 'hang-setup' }, { workers: 1, startTimeoutMs: 3000 })).rejects.toThrow(
      /worker 0 did not finish its setup within 3000 ms/,
    );
    model.dispose();
  });

  it('a loss that never returns rejects grads after the call timeout; the workers are terminated, later calls reject, close resolves', async () => {
    const model = mlp({ prefix: 'stuck' });
    const dp = await start(model.parameters, { mlp: { prefix: 'stuck' }, fail: 'hang-loss' }, { callTimeoutMs: 60_000 });
    const inputs = batch(4, 8);
    const t0 = Date.now();
    await expect(dp.grads(inputs, { timeoutMs: 1500 })).rejects.toThrow(
      /DataParallel\.grads: worker 1 did not answer within 1500 ms \(timeoutMs\); the workers were terminated, start a new DataParallel/,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expect(dp.predict([inputs[0]!])).rejects.toThrow(/did not answer within 1500 ms/);
    await dp.close();
    tf.dispose(inputs);
    model.dispose();
  });

  it('close() terminates a worker stuck in a call (after graceMs) and the call rejects', async () => {
    const model = mlp({ prefix: 'close' });
    const dp = await start(model.parameters, { mlp: { prefix: 'close' }, fail: 'hang-loss' }, { callTimeoutMs: Infinity });
    const inputs = batch(4, 9);
    const pending = dp.grads(inputs).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await dp.close({ graceMs: 500 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    const error = await pending;
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/DataParallel: closed \(the workers were terminated/);
    await expect(dp.grads(inputs)).rejects.toThrow(/closed/);
    tf.dispose(inputs);
    model.dispose();
  });

  it('bad timeouts are errors naming what came', async () => {
    const model = mlp({ prefix: 'opts' });
    await expect(start(model.parameters, { mlp: { prefix: 'opts' } }, { startTimeoutMs: -1 })).rejects.toThrow(
      'DataParallel.start: startTimeoutMs: expected a number of milliseconds > 0 (or Infinity), got -1',
    );
    model.dispose();
  });
});

describe('DataParallel in its own process', () => {
  const script = fileURLToPath(new URL('./fixtures/main.mjs', import.meta.url));
  for (const mode of ['close', 'idle']) {
    it(`the process exits once the work is done (${mode === 'close' ? 'after close()' : 'idle workers, no close()'})`, () => {
      const r = spawnSync(process.execPath, [script, mode], { encoding: 'utf8', timeout: 30_000 });
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^loss [\d.]+ grads 4$/m);
    });
  }
});
