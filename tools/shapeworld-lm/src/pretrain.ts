/**
 * Pretraining of the world's frozen LM: a GPT-2-architecture decoder (the GPT-2 of
 * @vlm/frozen-loaders, the same class a Hugging Face GPT-2 checkpoint loads into) trained from a
 * seeded initialisation on the world's text only (`worldText`: captions, QA and few-shot
 * episodes with `<image>` placeholders, never pixels), with Adam, warm-up + cosine decay and
 * global-norm clipping. Every random choice is seeded, so the same options on the same
 * backend and matMul kernels give bit-identical weights.
 */
import * as tf from '@tensorflow/tfjs';
import { readSafetensors, skipInit, trainableVariables, writeSafetensors } from '@vlm/core';
import { createDecoderLM, loadTokenizer, type CausalLM, type LMTokenizer } from '@vlm/frozen-loaders';
import { SPECIAL_TOKENS, mixSeed, shapeWorldTokenizerConfig, shapeWorldTokenizerJson, worldRandom, worldText, type SplitName } from '@vlm/shapeworld';

/** Options of {@link pretrainShapeWorldLM}. */
export interface PretrainOptions {
  /** Transformer blocks. Default 4. */
  nLayer?: number;
  /** Width. Default 256. */
  nEmbd?: number;
  /** Attention heads. Default 4. */
  nHead?: number;
  /** Longest sequence, and the length of the packed training rows. Default 256. */
  nPositions?: number;
  /** Optimiser steps. Default 500. */
  steps?: number;
  /** Packed rows of `nPositions` tokens per step. Default 4. */
  batchSize?: number;
  /** Peak learning rate. Default 2e-3. */
  learningRate?: number;
  /** Linear warm-up steps. Default 100 (capped at a tenth of the steps). */
  warmupSteps?: number;
  /** Global gradient-norm clip. Default 1. */
  clipNorm?: number;
  /** Seed of the initialisation and of the text stream. Default 0. */
  seed?: number;
  /** Held-out documents for the perplexity (validation split). Default 1000. */
  evalDocuments?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** The prompts whose logits the run records (the test compares them with the loaded folder's). */
export const PROBE_PROMPTS = [
  '<image> a small red',
  '<image> answer: red <|endofchunk|><image> answer: blue <|endofchunk|><image> answer:',
  '<image> answer: two <|endofchunk|><image> answer: one <|endofchunk|><image> answer:',
  '<image> question: where is the star? answer:',
];

/** What a run produces: the Hugging Face folder's files and what was measured. */
export interface PretrainResult {
  /** The trained model (trainable; dispose it). */
  lm: CausalLM;
  /** The tokenizer. */
  tokenizer: LMTokenizer;
  /** `config.json` contents. */
  config: Record<string, unknown>;
  /** `model.safetensors` bytes. */
  weights: Uint8Array;
  /** `tokenizer.json` contents. */
  tokenizerJson: Record<string, unknown>;
  /** `tokenizer_config.json` contents. */
  tokenizerConfig: Record<string, unknown>;
  /** Facts of the run for `pretraining.json`: options, losses, perplexities, probe logits, time. */
  report: PretrainReport;
}

/** The measurements of a run. */
export interface PretrainReport {
  /** The resolved options. */
  options: Required<Omit<PretrainOptions, 'log'>>;
  /** TF.js backend. */
  backend: string;
  /** Number of weights. */
  parameters: number;
  /** Training loss every 50 steps (and the last). */
  losses: Array<[number, number]>;
  /** Held-out perplexity per split (per predicted token, `</s>` included). */
  perplexity: Partial<Record<SplitName, number>>;
  /** Logits of {@link PROBE_PROMPTS} at the end of training: `[tokens, vocab]` each, row-major. */
  probe: Array<{ prompt: string; inputIds: number[]; logits: number[] }>;
  /** Seconds of training (excluding evaluation). */
  trainSeconds: number;
  /**
   * Predicted (non-padding) tokens of the training run: in all, and at positions in the second
   * half of the context (`nPositions / 2` and later), which packing trains too.
   */
  trainedTokens: { total: number; secondHalf: number };
  /** What the LM alone says next after each probe prompt: its 6 most likely tokens with probabilities. */
  nextTokens: Array<{ prompt: string; top: Array<[string, number]> }>;
}

const PAD = 0;

/** Tokenised documents `<s> … </s>` of a split, from a given document index. */
function encodeDocs(tok: LMTokenizer, split: SplitName, count: number, seed: number, offset: number, maxLen: number): number[][] {
  const eos = tok.tokenToId(SPECIAL_TOKENS.eos)!;
  return worldText(split, count, { seed, offset }).map((d) => {
    const ids = [...tok.encode(d.text), eos];
    if (ids.length > maxLen) throw new Error(`document of ${ids.length} tokens is longer than nPositions ${maxLen}: ${d.text}`);
    return ids;
  });
}

/** Right-padded `[rows, longest]` ids. */
function padRows(rows: number[][]): { ids: Int32Array; t: number } {
  const t = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * t).fill(PAD);
  rows.forEach((r, i) => ids.set(r, i * t));
  return { ids, t };
}

/** Sum of next-token negative log-likelihoods and the number of predicted tokens of a padded batch. */
function batchNll(lm: CausalLM, ids: Int32Array, b: number, t: number, vocab: number): { sum: tf.Scalar; count: tf.Scalar } {
  return tf.tidy(() => {
    const all = tf.tensor2d(ids, [b, t], 'int32');
    const inputs = tf.slice(all, [0, 0], [b, t - 1]);
    const targets = tf.reshape(tf.slice(all, [0, 1], [b, t - 1]), [-1]);
    const { logits } = lm.forward({ inputIds: inputs });
    const logp = tf.logSoftmax(tf.reshape(logits, [-1, vocab]));
    const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, vocab)), -1);
    const mask = tf.cast(tf.notEqual(targets, PAD), 'float32');
    return { sum: tf.neg(tf.sum(tf.mul(picked, mask))) as tf.Scalar, count: tf.sum(mask) as tf.Scalar };
  });
}

/** GPT-2's initialisation, seeded: N(0, 0.02) weights, residual projections N(0, 0.02/√(2L)), zero biases, unit norms. */
function initialise(lm: CausalLM, nLayer: number, seed: number): void {
  const rng = worldRandom(mixSeed(seed, 0x1417));
  const dict: Record<string, tf.Tensor> = {};
  for (const [name, shape] of Object.entries(lm.stateDictShapes())) {
    if (/ln_\d|ln_f/.test(name)) dict[name] = name.endsWith('weight') ? tf.ones(shape) : tf.zeros(shape);
    else if (name.endsWith('bias')) dict[name] = tf.zeros(shape);
    else {
      const std = /c_proj\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * nLayer) : 0.02;
      dict[name] = tf.randomNormal(shape, 0, std, 'float32', Math.floor(rng() * 2 ** 31));
    }
  }
  lm.loadStateDict(dict);
  tf.dispose(Object.values(dict));
}

/** Perplexity of `lm` on `count` held-out documents of `split`. */
export function perplexity(lm: CausalLM, tok: LMTokenizer, split: SplitName, count: number, maxLen: number, seed = 1): number {
  const docs = encodeDocs(tok, split, count, seed, 0, maxLen);
  let sum = 0;
  let n = 0;
  for (let i = 0; i < docs.length; i += 64) {
    const rows = docs.slice(i, i + 64);
    const { ids, t } = padRows(rows);
    const r = batchNll(lm, ids, rows.length, t, tok.vocabSize);
    sum += r.sum.dataSync()[0]!;
    n += r.count.dataSync()[0]!;
    tf.dispose([r.sum, r.count]);
  }
  return Math.exp(sum / n);
}

/** The logits `[tokens, vocab]` of each probe prompt, flattened. */
export function probeLogits(lm: CausalLM, tok: LMTokenizer): PretrainReport['probe'] {
  return PROBE_PROMPTS.map((prompt) => {
    const inputIds = tok.encode(prompt);
    const logits = tf.tidy(() => lm.forward({ inputIds: tf.tensor2d([inputIds], undefined, 'int32') }).logits.dataSync());
    return { prompt, inputIds, logits: Array.from(logits) };
  });
}

/** The 6 most likely next tokens after the last position of flattened `[tokens, vocab]` logits. */
function topNext(logits: number[], tok: LMTokenizer): Array<[string, number]> {
  const vocab = tok.vocabSize;
  const last = logits.slice(logits.length - vocab);
  const max = Math.max(...last);
  const exp = last.map((v) => Math.exp(v - max));
  const z = exp.reduce((a, b) => a + b, 0);
  return exp
    .map((e, id) => [tok.idToToken(id) ?? String(id), Number((e / z).toFixed(4))] as [string, number])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6);
}

/**
 * Packs documents into rows of at most `length` tokens, GPT-2 style: consecutive documents
 * `<s> … </s>` are concatenated into a row while they fit; a document that does not fit starts
 * the next row (a document is never split). Rows are returned unpadded; every row is full up to
 * less than one document.
 */
export function packDocuments(docs: readonly number[][], length: number): number[][] {
  const rows: number[][] = [];
  let row: number[] = [];
  for (const d of docs) {
    if (d.length > length) throw new Error(`packDocuments: a document of ${d.length} tokens is longer than the rows (${length} tokens)`);
    if (row.length + d.length > length) {
      rows.push(row);
      row = [];
    }
    row.push(...d);
  }
  if (row.length > 0) rows.push(row);
  return rows;
}

/**
 * Pretrains the world's LM. Rows are packed from the train split's text stream in order
 * ({@link packDocuments}: consecutive documents fill rows of `nPositions` tokens, so every
 * position is trained; a document attends to the ones before it in its row, as in GPT-2's
 * pretraining), `batchSize` rows a step, padding only the rest of a row. The stream is seeded.
 *
 * @example
 * ```ts
 * const { weights, config, report } = await pretrainShapeWorldLM({ steps: 10, nLayer: 1, nEmbd: 32 });
 * ```
 */
export async function pretrainShapeWorldLM(options: PretrainOptions = {}): Promise<PretrainResult> {
  const o: Required<Omit<PretrainOptions, 'log'>> = {
    nLayer: options.nLayer ?? 4,
    nEmbd: options.nEmbd ?? 256,
    nHead: options.nHead ?? 4,
    nPositions: options.nPositions ?? 256,
    steps: options.steps ?? 500,
    batchSize: options.batchSize ?? 4,
    learningRate: options.learningRate ?? 2e-3,
    warmupSteps: Math.min(options.warmupSteps ?? 100, Math.ceil((options.steps ?? 500) / 10)),
    clipNorm: options.clipNorm ?? 1,
    seed: options.seed ?? 0,
    evalDocuments: options.evalDocuments ?? 1000,
  };
  const log = options.log ?? (() => {});
  const tokenizerJson = shapeWorldTokenizerJson();
  const tokenizerConfig = shapeWorldTokenizerConfig();
  const tok = loadTokenizer(tokenizerJson, { tokenizerConfig });
  const vocab = tok.vocabSize;
  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: vocab,
    n_positions: o.nPositions,
    n_ctx: o.nPositions,
    n_embd: o.nEmbd,
    n_layer: o.nLayer,
    n_head: o.nHead,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    bos_token_id: tok.tokenToId(SPECIAL_TOKENS.bos),
    eos_token_id: tok.tokenToId(SPECIAL_TOKENS.eos),
    pad_token_id: PAD,
    torch_dtype: 'float32',
  };
  // Built without createDecoderLM's own random initialisation (skipInit): `initialise` draws the only one.
  const lm = skipInit(() => createDecoderLM(config));
  initialise(lm, o.nLayer, o.seed);
  const vars = trainableVariables(lm);
  const parameters = vars.reduce((n, v) => n + v.size, 0);
  log(`GPT-2 ${o.nLayer} layers × ${o.nEmbd}, ${o.nHead} heads, vocab ${vocab}: ${parameters} weights; ${o.steps} steps of ${o.batchSize} packed rows of ${o.nPositions} tokens on ${tf.getBackend()}`);

  const optimizer = tf.train.adam(o.learningRate, 0.9, 0.98, 1e-8);
  const setLr = (lr: number) => {
    (optimizer as unknown as { learningRate: number }).learningRate = lr;
  };
  // The train stream, packed: documents are read 1024 at a time; the last, partly filled row of a
  // chunk is dropped (not padded) so that rows are full up to less than one document.
  let queue: number[][] = [];
  let nextDoc = 0;
  const nextBatch = () => {
    while (queue.length < o.batchSize) {
      const docs = encodeDocs(tok, 'train', 1024, o.seed, nextDoc, o.nPositions);
      nextDoc += docs.length;
      queue.push(...packDocuments(docs, o.nPositions).slice(0, -1));
    }
    return queue.splice(0, o.batchSize);
  };
  const trainedTokens = { total: 0, secondHalf: 0 };

  const losses: Array<[number, number]> = [];
  const t0 = performance.now();
  let running = 0;
  for (let step = 1; step <= o.steps; step++) {
    const progress = step <= o.warmupSteps ? step / o.warmupSteps : 0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * (step - o.warmupSteps)) / Math.max(1, o.steps - o.warmupSteps)));
    setLr(o.learningRate * progress);
    const rows = nextBatch();
    for (const r of rows) {
      trainedTokens.total += r.length - 1;
      trainedTokens.secondHalf += Math.max(0, r.length - 1 - Math.floor(o.nPositions / 2));
    }
    const { ids, t } = padRows(rows);
    const lossValue = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const r = batchNll(lm, ids, rows.length, t, vocab);
        return tf.div(r.sum, r.count) as tf.Scalar;
      }, vars);
      const names = Object.keys(grads);
      const norm = tf.sqrt(tf.addN(names.map((k) => tf.sum(tf.square(grads[k]!)))));
      const scale = tf.minimum(1, tf.div(o.clipNorm, tf.add(norm, 1e-6)));
      optimizer.applyGradients(Object.fromEntries(names.map((k) => [k, tf.mul(grads[k]!, scale)])));
      return value.dataSync()[0]!;
    });
    running = step === 1 ? lossValue : 0.95 * running + 0.05 * lossValue;
    if (step % 50 === 0 || step === o.steps) {
      losses.push([step, Number(lossValue.toFixed(4))]);
      log(`step ${step}/${o.steps}: loss ${lossValue.toFixed(3)} (smoothed ${running.toFixed(3)}), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  optimizer.dispose();
  log(`trained ${trainedTokens.total} tokens, ${trainedTokens.secondHalf} of them at positions ${Math.floor(o.nPositions / 2)}–${o.nPositions - 1}`);
  return finishShapeWorldLM({ lm, tokenizer: tok, config, options: o, losses, trainSeconds, trainedTokens, log });
}

/** What {@link finishShapeWorldLM} takes: a trained model and the facts of its run. */
export interface FinishInput {
  /** The trained model (its weights are replaced by their F16 rounding). */
  lm: CausalLM;
  /** The tokenizer. */
  tokenizer: LMTokenizer;
  /** `config.json` contents. */
  config: Record<string, unknown>;
  /** The resolved options. */
  options: PretrainReport['options'];
  /** Training losses. */
  losses: Array<[number, number]>;
  /** Seconds of training. */
  trainSeconds: number;
  /** Predicted tokens of the training run. */
  trainedTokens: PretrainReport['trainedTokens'];
  /** Progress lines. */
  log?: (line: string) => void;
}

/**
 * The end of a run: stores the weights as F16 safetensors, loads that rounding back into the
 * model (so what is measured is what is committed), then measures the held-out perplexities
 * and the probe logits.
 */
export function finishShapeWorldLM(input: FinishInput): PretrainResult {
  const { lm, tokenizer: tok, options: o } = input;
  const weights = tf.tidy(() => writeSafetensors(lm.stateDict(), { format: 'pt' }, { float32As: 'F16' }));
  const { tensors } = readSafetensors(weights, { source: 'model.safetensors' });
  lm.loadStateDict(tensors);
  tf.dispose(Object.values(tensors));
  const ppl: Partial<Record<SplitName, number>> = {};
  for (const split of ['validation', 'test-compositional'] as const) {
    ppl[split] = o.evalDocuments > 0 ? Number(perplexity(lm, tok, split, o.evalDocuments, o.nPositions).toFixed(4)) : NaN;
  }
  input.log?.(`held-out perplexity (F16 weights): validation ${ppl.validation}, test-compositional ${ppl['test-compositional']}`);
  const parameters = lm.parameters().reduce((n, v) => n + v.size, 0);
  const probe = probeLogits(lm, tok);
  return {
    lm,
    tokenizer: tok,
    config: input.config,
    weights,
    tokenizerJson: shapeWorldTokenizerJson(),
    tokenizerConfig: shapeWorldTokenizerConfig(),
    report: { options: o, backend: tf.getBackend(), parameters, losses: input.losses, perplexity: ppl, probe, trainSeconds: Number(input.trainSeconds.toFixed(1)), trainedTokens: input.trainedTokens, nextTokens: probe.map((p) => ({ prompt: p.prompt, top: topNext(p.logits, tok) })) },
  };
}
