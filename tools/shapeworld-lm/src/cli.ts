/**
 * Pretrains the frozen LM of @vlm/shapeworld and writes it as a Hugging Face folder
 * (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) plus
 * pretraining.json (the options, losses, held-out perplexities, the probe logits and the time).
 *
 *   pnpm shapeworld-lm [--out DIR] [--steps N] [--layers N] [--width N] [--heads N] [--batch N]
 *                      [--lr X] [--seed N] [--eval-docs N] [--backend wasm|cpu] [--no-native]
 *                      [--native-without gelu,layerNorm]   (a non-empty list, each at most once)
 *
 * Default: the committed model, into packages/shapeworld/lm. The same command on the same
 * backend and matMul kernels writes bit-identical weights.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '@vlm/core';
import { enableNativeMatMul, nativeKernelsWithout, nativeMatMulAvailable, parseNativeWithout } from '@vlm/native-matmul';
import { pretrainShapeWorldLM } from './pretrain';

const args = process.argv.slice(2);
const known = new Set(['--out', '--steps', '--layers', '--width', '--heads', '--batch', '--lr', '--seed', '--eval-docs', '--backend', '--no-native', '--native-without']);
for (const a of args) if (a.startsWith('--') && !known.has(a)) throw new Error(`shapeworld-lm: unknown flag ${a}; expected ${[...known].join(', ')}`);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`shapeworld-lm: --${name} needs a value`);
  return v;
};
const num = (name: string): number | undefined => {
  const v = option(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`shapeworld-lm: --${name} expects a number, got '${v}'`);
  return n;
};

async function main() {
  // Checked before anything runs (an empty list is an error, as in the bench).
  const withoutFlag = option('native-without');
  const without = withoutFlag === undefined ? [] : parseNativeWithout(withoutFlag);
  const here = dirname(fileURLToPath(import.meta.url));
  const out = resolve(option('out') ?? join(here, '..', '..', '..', 'packages', 'shapeworld', 'lm'));
  tf.enableProdMode();
  const backend = await selectBackend([(option('backend') ?? 'wasm') as 'wasm', 'cpu']);
  const native = !args.includes('--no-native') && nativeMatMulAvailable() ? enableNativeMatMul(nativeKernelsWithout(without)) : null;
  // which native kernels ran: the same weights come back only with the same ones
  const kernels = native ? `@vlm/native-matmul (${native.isa}, ${native.threads} threads${native.layerNorm ? ', layerNorm' : ''})` : 'stock TF.js matMul';
  console.log(`backend ${backend}, ${kernels}`);
  const t0 = performance.now();
  const result = await pretrainShapeWorldLM({
    steps: num('steps'),
    nLayer: num('layers'),
    nEmbd: num('width'),
    nHead: num('heads'),
    batchSize: num('batch'),
    learningRate: num('lr'),
    seed: num('seed'),
    evalDocuments: num('eval-docs'),
    log: (line) => console.log(line),
  });
  const totalSeconds = (performance.now() - t0) / 1000;
  mkdirSync(out, { recursive: true });
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  writeFileSync(join(out, 'config.json'), json(result.config));
  writeFileSync(join(out, 'model.safetensors'), result.weights);
  writeFileSync(join(out, 'tokenizer.json'), json(result.tokenizerJson));
  writeFileSync(join(out, 'tokenizer_config.json'), json(result.tokenizerConfig));
  writeFileSync(
    join(out, 'pretraining.json'),
    `${JSON.stringify({ command: `shapeworld-lm ${args.join(' ')}`.trim(), kernels, totalSeconds: Number(totalSeconds.toFixed(1)), ...result.report })}\n`,
  );
  result.lm.dispose();
  console.log(`wrote ${out} (${(result.weights.length / 1e6).toFixed(1)} MB of weights) in ${totalSeconds.toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
