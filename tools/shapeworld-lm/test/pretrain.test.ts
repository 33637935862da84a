import * as tf from '@tensorflow/tfjs-core';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { LAYER_NORM_KERNEL } from '@vlm/core';
import { loadDecoderLM, loadTokenizer } from '@vlm/frozen-loaders';
import { nativeMatMulAvailable } from '@vlm/native-matmul';
import { COLOURS, SHAPES, worldText } from '@vlm/shapeworld';
import { readShapeWorldLM, shapeWorldLMDir } from '../../../packages/shapeworld/src/node';
import { packDocuments, probeLogits } from '../src/pretrain';

const cli = resolve(__dirname, '../dist/cli.js');
const backend = process.env.VLM_BACKEND ?? 'cpu';
const native = process.env.VLM_NATIVE === '1';

/** Loads a written folder the way a user loads any Hugging Face GPT-2: config.json + model.safetensors + tokenizer.json. */
async function loadFolder(dir: string) {
  const files = readShapeWorldLM(dir);
  const lm = await loadDecoderLM({ config: files.config, weights: files.weights });
  const tok = loadTokenizer(files.tokenizer, { tokenizerConfig: files.tokenizerConfig });
  const report = JSON.parse(readFileSync(join(dir, 'pretraining.json'), 'utf8'));
  return { lm, tok, report, files };
}

function runTiny(out: string): void {
  const args = [cli, '--out', out, '--steps', '3', '--layers', '1', '--width', '32', '--heads', '2', '--batch', '4', '--eval-docs', '8', '--backend', backend];
  execFileSync(process.execPath, native ? args : [...args, '--no-native'], { stdio: 'pipe' });
}

describe('packDocuments', () => {
  test('consecutive documents fill a row while they fit; one that does not starts the next row; none is split', () => {
    const d = (n: number, v: number) => Array.from({ length: n }, () => v);
    expect(packDocuments([d(3, 1), d(4, 2), d(2, 3), d(5, 4), d(8, 5)], 9)).toEqual([
      [...d(3, 1), ...d(4, 2), ...d(2, 3)],
      d(5, 4),
      d(8, 5),
    ]);
    expect(packDocuments([d(9, 1), d(1, 2)], 9)).toEqual([d(9, 1), d(1, 2)]);
    expect(packDocuments([], 9)).toEqual([]);
    expect(() => packDocuments([d(2, 1), d(10, 2)], 9)).toThrow('a document of 10 tokens is longer than the rows (9 tokens)');
  });
});

describe('shapeworld-lm pretraining script', () => {
  test('tiny run twice → bit-identical folders; the folder loads through the HF loader path with the script’s logits', async () => {
    expect(existsSync(cli), `build tools/shapeworld-lm first (${cli})`).toBe(true);
    const a = mkdtempSync(join(tmpdir(), 'swlm-a-'));
    const b = mkdtempSync(join(tmpdir(), 'swlm-b-'));
    runTiny(a);
    runTiny(b);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
    }
    const strip = (dir: string) => {
      const { totalSeconds, trainSeconds, command, ...rest } = JSON.parse(readFileSync(join(dir, 'pretraining.json'), 'utf8'));
      expect(command).toMatch(/^shapeworld-lm --out /);
      expect([totalSeconds, trainSeconds].every((s) => s > 0)).toBe(true);
      return rest;
    };
    expect(strip(b)).toEqual(strip(a));

    const before = tf.memory().numTensors;
    const { lm, tok, report } = await loadFolder(a);
    expect(lm.hfClass).toBe('GPT2LMHeadModel');
    expect(lm.parameters().every((v) => !v.trainable)).toBe(true);
    // Same backend and kernels as the script's run: the very same logits.
    const got = probeLogits(lm, tok);
    expect(got.map((p) => p.inputIds)).toEqual(report.probe.map((p: { inputIds: number[] }) => p.inputIds));
    for (const [i, p] of got.entries()) expect(p.logits).toEqual(report.probe[i].logits);
    lm.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('shapeworld-lm --native-without (parsed by @vlm/native-matmul\'s parseNativeWithout)', () => {
  // As in packages/native-matmul's suite: the addon must be built unless VLM_NATIVE_OPTIONAL=1.
  const skipNative = process.env.VLM_NATIVE_OPTIONAL === '1' && !nativeMatMulAvailable();
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

  test.skipIf(skipNative).each([
    ['layerNorm', false],
    [' gelu ', true],
  ])('--native-without %j: pretraining.json\'s kernels name the native LayerNorm: %s', (value, layerNorm) => {
    expect(existsSync(cli), `build tools/shapeworld-lm first (${cli})`).toBe(true);
    const out = mkdtempSync(join(tmpdir(), 'swlm-without-'));
    const r = run('--out', out, '--steps', '1', '--layers', '1', '--width', '32', '--heads', '2', '--batch', '2', '--eval-docs', '2', '--backend', backend, '--native-without', value);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'pretraining.json'), 'utf8'));
    expect(report.kernels).toMatch(/^@vlm\/native-matmul \((avx512|avx2|generic), \d+ threads(, layerNorm)?\)$/);
    expect(report.kernels.includes('layerNorm')).toBe(layerNorm);
  });

  test("an empty list is an error (it used to be ignored), as are unknown names: exit 1 before pretraining, with the parser's message", () => {
    const out = mkdtempSync(join(tmpdir(), 'swlm-bad-'));
    const expected = '--native-without: expected a comma-separated list of gelu, layerNorm (each at most once); got';
    const empty = run('--out', out, '--steps', '1', '--backend', backend, '--native-without', '');
    expect([empty.status, empty.stdout, empty.stderr.trim()]).toEqual([1, '', `${expected} '' (an empty list)`]);
    const unknown = run('--out', out, '--native-without', 'gelu,foo');
    expect([unknown.status, unknown.stdout, unknown.stderr.trim()]).toEqual([1, '', `${expected} 'gelu,foo' ('foo' is not one)`]);
    expect(existsSync(join(out, 'pretraining.json'))).toBe(false);
  });
});

describe('the committed LM (packages/shapeworld/lm)', () => {
  test('loads through the HF loader path; logits equal the pretraining run’s; knows the language but not the images', async () => {
    const { lm, tok, report } = await loadFolder(shapeWorldLMDir());
    const got = probeLogits(lm, tok);
    // Bit-identical on the run's backend and kernels; other backends round differently (float32).
    // (the same kernels: the native matMul or not, and the native LayerNorm or not — the run records it)
    const layerNormNow = tf.getKernel(LAYER_NORM_KERNEL, tf.getBackend()) !== undefined;
    const same = report.backend === backend && report.kernels.startsWith('@vlm/native-matmul') === native && report.kernels.includes('layerNorm') === layerNormNow;
    let worst = 0;
    for (const [i, p] of got.entries()) {
      expect(p.inputIds).toEqual(report.probe[i].inputIds);
      if (same) expect(p.logits).toEqual(report.probe[i].logits);
      for (const [j, v] of p.logits.entries()) worst = Math.max(worst, Math.abs(v - report.probe[i].logits[j]));
    }
    expect(worst).toBeLessThan(1e-3);

    const vocab = tok.vocabSize;
    const nextProbs = (prompt: string, before: number[] = []) => {
      const ids = [...before, ...tok.encode(prompt)];
      const probs = tf.tidy(() => tf.softmax(tf.slice(lm.forward({ inputIds: tf.tensor2d([ids], undefined, 'int32') }).logits, [0, ids.length - 1, 0], [1, 1, vocab])).dataSync());
      return (words: readonly string[]) => words.map((w) => probs[tok.tokenToId(w)!]!);
    };
    // "<image> a small red" → a distribution over shape words, not one memorised answer.
    const shapes = nextProbs('<image> a small red')(SHAPES);
    expect(shapes.reduce((s, p) => s + p, 0)).toBeGreaterThan(0.9);
    expect(Math.max(...shapes)).toBeLessThan(0.6);
    // Given colour shots, the query is answered with a colour word; given count shots, with a number.
    const colours = nextProbs('<image> answer: red <|endofchunk|><image> answer: blue <|endofchunk|><image> answer: white <|endofchunk|><image> answer:')(COLOURS);
    expect(colours.reduce((s, p) => s + p, 0)).toBeGreaterThan(0.9);
    const counts = nextProbs('<image> answer: two <|endofchunk|><image> answer: one <|endofchunk|><image> answer: three <|endofchunk|><image> answer:')(['one', 'two', 'three']);
    expect(counts.reduce((s, p) => s + p, 0)).toBeGreaterThan(0.9);

    // 256 positions, and the second half is trained (packed rows): after 150+ tokens of other
    // documents the same prompts still get the same kinds of answers.
    expect(lm.maxPositions).toBe(256);
    expect(report.options.nPositions).toBe(256);
    expect(report.trainedTokens.secondHalf).toBeGreaterThan(0.4 * report.trainedTokens.total);
    // The context: held-out documents `<s> … </s>` one after another, as the packed rows hold them.
    const eos = tok.tokenToId('</s>')!;
    const context: number[] = [];
    for (const d of worldText('validation', 40, { seed: 1 })) if (context.length < 150) context.push(...tok.encode(d.text), eos);
    expect(context.length).toBeGreaterThanOrEqual(150);
    const late = nextProbs('<image> a small red', context);
    expect(late(SHAPES).reduce((s, p) => s + p, 0)).toBeGreaterThan(0.9);
    expect(Math.max(...late(SHAPES))).toBeLessThan(0.6);
    const lateCounts = nextProbs('<image> answer: two <|endofchunk|><image> answer: one <|endofchunk|><image> answer: three <|endofchunk|><image> answer:', context)(['one', 'two', 'three']);
    expect(lateCounts.reduce((s, p) => s + p, 0)).toBeGreaterThan(0.9);
    // A 256-token input runs.
    const full = tf.tidy(() => lm.forward({ inputIds: tf.zeros([1, 256], 'int32') }).logits.shape);
    expect(full).toEqual([1, 256, vocab]);
    lm.dispose();
  });
});
