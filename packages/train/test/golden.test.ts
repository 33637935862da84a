// AdamW (two groups, warm-up + cosine, clipping, accumulation), Adam + linear schedule, SGD with
// momentum + constant schedule, Nesterov SGD: weights after every step equal PyTorch's
// (golden/train, made by golden/scripts/make_train_golden.py) within 1e-5 relative, through
// the same adapter `pnpm golden` runs.
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '@vlm/core';
import { trainAdapters } from '../../../tools/golden/src/adapters/train';
import { compareCase } from '../../../tools/golden/src/compare';

const dir = resolve(__dirname, '../../../golden/train');

describe.each([
  ['adamw_groups_cosine_clip_accum', 'TrainerAdamW'],
  ['adam_sgd_linear_constant', 'TrainerOptimizers'],
])('PyTorch golden %s', (name, module) => {
  it('every step equals PyTorch within atol 1e-6 + rtol 1e-5', async () => {
    const sidecar = JSON.parse(readFileSync(`${dir}/${name}.json`, 'utf8'));
    expect(sidecar.module).toBe(module);
    expect(sidecar.tolerance.forward).toEqual({ atol: 1e-6, rtol: 1e-5 });
    const { tensors } = readSafetensors(readFileSync(`${dir}/${name}.safetensors`));
    const before = tf.memory().numTensors;
    const c = { name, dir, sidecar, tensors };
    const computed = await trainAdapters[module]!(c);
    const report = compareCase(c, module, computed);
    tf.dispose(Object.values(computed));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(tensors));
    expect(report.detail).toBe('');
    expect(report.pass).toBe(true);
    if (module === 'TrainerAdamW') expect(sidecar.steps_clipped).toBeGreaterThan(0); // clipping was exercised
  });
});
