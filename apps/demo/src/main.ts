/**
 * The @vlm demo: a frozen vision encoder and a frozen language model, connected by a light
 * bridge that is the only thing trained — once the Flamingo way (Perceiver Resampler + gated
 * cross-attention) and once the BLIP-2 way (Q-Former + language projection, soft visual prompt).
 *
 * Everything is embedded, nothing is downloaded: the encoder is the pretrained MobileNetV2 that
 * ships inside the `nsfwjs` npm package (cut at block_13_expand_relu, 49 tokens × 576); the
 * data are scenes drawn in code (a red/green/blue circle/square/triangle at a random place and
 * size); the language model is a small GPT-2-shaped decoder with fixed random weights (no
 * pretrained LM small enough to ship exists), frozen like a real one. The bridges learn to make
 * that blind LM caption what the encoder sees; held-out scenes measure it.
 *
 *   pnpm demo [--steps N] [--seed N] [--backend wasm|cpu] [--no-native]
 *
 * Matrix products run on @vlm/native-matmul's multi-threaded kernels where its addon was built
 * at install (`--no-native`: TF.js's stock kernels).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countParameters, manualSeed, readSafetensors, selectBackend, trainableVariables, writeSafetensors, type Module, type StateDict } from '@vlm/core';
import { createDecoderLM, generate, loadNsfwjsMobileNetV2Encoder, loadTokenizer, preprocessImages, type CausalLM } from '@vlm/frozen-loaders';
import { FlamingoPerceiverResampler } from '@vlm/perceiver';
import { FlamingoLM } from '@vlm/gated-xattn';
import { QFormer, buildLmInputs, causalLmLoss } from '@vlm/qformer';
import { enableNativeMatMul, nativeMatMulAvailable } from '@vlm/native-matmul';
import { COLORS, SHAPES, allScenes, type Scene } from './scenes';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const STEPS = Number(option('steps', '60'));
const SEED = Number(option('seed', '0')); // the bridges' initial weights (manualSeed)
// Kept small so the demo trains in about a minute on two CPU cores.
const PERCEIVER = { dim: 576, depth: 1, dimHead: 32, heads: 4, numLatents: 8, ffMult: 1 };
const log = (s = '') => process.stdout.write(`${s}\n`);
const shape = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;
const shapeOf = (f: () => tf.Tensor) => {
  const t = tf.tidy(f);
  const s = shape(t);
  t.dispose();
  return s;
};
const timed = async <T>(what: string, f: () => T | Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const r = await f();
  log(`  ${what} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return r;
};

// ---------------------------------------------------------------------------------------------
// A word-level tokenizer.json, run by the same Hugging Face tokenizer library real models use.
const WORDS = ['a', ...Object.keys(COLORS), ...SHAPES];
const tokenizerJson = {
  version: '1.0',
  added_tokens: [{ id: 0, content: '[PAD]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
  normalizer: { type: 'Lowercase' },
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: {
    type: 'WordPiece',
    unk_token: '[UNK]',
    continuing_subword_prefix: '##',
    max_input_chars_per_word: 100,
    vocab: Object.fromEntries(['[PAD]', '[UNK]', ...WORDS].map((w, i) => [w, i])),
  },
};

/** Fills every weight of `module` with seeded values, so the frozen LM is the same on every run. */
function seededWeights(module: Module, seed: number, std: number): void {
  const shapes = module.stateDictShapes();
  const dict: StateDict = {};
  let s = seed;
  for (const [name, shp] of Object.entries(shapes)) {
    const isNorm = /ln_|norm/.test(name);
    dict[name] = isNorm ? (name.endsWith('weight') ? tf.ones(shp) : tf.zeros(shp)) : tf.randomNormal(shp, 0, std, 'float32', s++);
  }
  module.loadStateDict(dict);
  tf.dispose(Object.values(dict));
}

function accuracy(predicted: string[][], scenes: Scene[]) {
  let color = 0;
  let both = 0;
  predicted.forEach((words, i) => {
    const sc = scenes[i]!;
    if (words[0] === sc.color) color++;
    if (words[0] === sc.color && words[1] === sc.shape) both++;
  });
  return `colour ${((100 * color) / scenes.length).toFixed(0)}%, colour+shape ${((100 * both) / scenes.length).toFixed(0)}%`;
}

async function main() {
  log('@vlm demo: train only the bridge between a frozen vision encoder and a frozen language model\n');
  tf.enableProdMode(); // no "install tfjs-node" banner (it cannot be installed offline; wasm is the fast path here)
  const backend = await selectBackend([option('backend', 'wasm') as 'wasm', 'cpu']);
  const native = !args.includes('--no-native') && nativeMatMulAvailable() ? enableNativeMatMul() : null;
  log(`backend: ${backend}${native ? `, matMuls on @vlm/native-matmul (${native.isa}, ${native.threads} threads)` : ', stock matMul kernels'}`);
  const tensorsAtStart = tf.memory().numTensors;
  manualSeed(SEED);

  // ------------------------------------------------------------------ data and frozen encoder
  const train = allScenes(4); // 36 scenes: every colour × shape, 4 placements
  const test = allScenes(2, 100); // 18 held-out placements
  log(`\n1. Frozen vision encoder (pretrained MobileNetV2 embedded in nsfwjs), ${train.length} training and ${test.length} held-out drawn scenes`);
  const encoder = await timed('loaded offline', () => loadNsfwjsMobileNetV2Encoder());
  const encode = (scenes: Scene[]) =>
    tf.tidy(() => encoder.encode(preprocessImages(scenes.map((s) => s.image), encoder.preprocessing)));
  const trainTokens = await timed('encoded', () => encode(train));
  const testTokens = encode(test);
  log(`  images ${scenes224(train.length)} → vision tokens ${shape(trainTokens)} (${encoder.name}; frozen)`);

  // ------------------------------------------------------------------ frozen language model
  const tok = loadTokenizer(tokenizerJson, { addSpecialTokens: ['<image>', '<|endofchunk|>'] });
  const imageId = tok.tokenToId('<image>')!;
  const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: tok.vocabSize, n_positions: 32, n_embd: 64, n_layer: 2, n_head: 4 }) as CausalLM;
  seededWeights(lm, 1234, 0.2);
  log(`\n2. Frozen language model: GPT-2 shape, vocab ${tok.vocabSize}, 2 layers, width 64 (${countParameters(lm)} weights)`);
  const ids = (texts: string[]) => tf.tensor2d(texts.map((t) => tok.encode(t)), undefined, 'int32');
  const caption = (s: Scene) => `a ${s.color} ${s.shape} <|endofchunk|>`;

  // ------------------------------------------------------------------ Flamingo bridge
  log('\n3. Flamingo bridge: Perceiver Resampler + gated cross-attention before every LM layer');
  const perceiver = new FlamingoPerceiverResampler(PERCEIVER);
  const flamingo = new FlamingoLM({ lm, dimVisual: 576, crossAttnEveryNLayers: 1, dimHead: 16, heads: 4, mediaTokenId: imageId });
  log(`  LM frozen by FlamingoLM: ${countParameters(lm, { trainableOnly: true })} trainable LM weights; bridge ${countParameters(perceiver) + countParameters(flamingo)} trainable weights`);
  const flamingoIds = ids(train.map((s) => `<image> ${caption(s)}`)); // [36, 6]
  const flamingoLabels = tf.tidy(() => tf.where(tf.broadcastTo(tf.greater(tf.range(0, flamingoIds.shape[1]!, 1, 'int32'), 1), flamingoIds.shape), flamingoIds, tf.fill(flamingoIds.shape, -100, 'int32')));
  const media = (tokens: tf.Tensor) => perceiver.forward(tf.reshape(tokens, [tokens.shape[0]!, 1, 1, 49, 576])); // [b, 1, 8, 576]
  const flamingoPredict = (tokens: tf.Tensor) =>
    tf.tidy(() => {
      const prompt = ids(new Array(tokens.shape[0]).fill('<image> a'));
      const { sequences } = flamingo.generate({ inputIds: prompt, media: media(tokens), maxNewTokens: 2 });
      return (sequences.arraySync() as number[][]).map((row) => row.slice(2).map((id) => tok.decode([id])));
    });
  log(`  shapes: vision tokens ${shape(trainTokens)} → perceiver ${shapeOf(() => media(trainTokens))} → LM logits [${train.length}, ${flamingoIds.shape[1]}, ${tok.vocabSize}]`);
  log(`  before training (gates are 0, the LM is blind): held-out ${accuracy(flamingoPredict(testTokens), test)}`);
  const flamingoVars = trainableVariables(perceiver, flamingo);
  const lmBefore = lm.parameters().map((v) => v.dataSync().slice());
  await trainLoop('flamingo', flamingoVars, () => causalLmLoss(flamingo.forward({ inputIds: flamingoIds, media: media(trainTokens) }).logits, flamingoLabels));
  log(`  after ${STEPS} steps: held-out ${accuracy(flamingoPredict(testTokens), test)}`);
  log(`  gates tanh(α) per LM layer: ${flamingo.gateValues().map((g) => `layer ${g.layer}: attn ${g.attn.toFixed(3)}, ff ${g.ff.toFixed(3)}`).join('; ')}`);
  const lmSame = lm.parameters().every((v, i) => v.dataSync().every((x, j) => Object.is(x, lmBefore[i]![j])));
  log(`  frozen LM bit-identical after training: ${lmSame}`);

  // save the bridge under OpenFlamingo's names (labels: -100 on <image> and the prompt 'a'), load it into fresh modules, compare
  const outDir = join(tmpdir(), 'vlm-demo');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, 'flamingo-bridge.safetensors');
  const sd = { ...prefixed('perceiver.', perceiver.stateDict()), ...prefixed('lang_encoder.', flamingo.stateDict()) };
  writeFileSync(file, writeSafetensors(sd));
  tf.dispose(Object.values(sd));
  const perceiver2 = new FlamingoPerceiverResampler(PERCEIVER);
  const flamingo2 = new FlamingoLM({ lm, dimVisual: 576, crossAttnEveryNLayers: 1, dimHead: 16, heads: 4, mediaTokenId: imageId });
  const loaded = readSafetensors(readFileSync(file)).tensors;
  perceiver2.loadStateDict(unprefixed('perceiver.', loaded));
  flamingo2.loadStateDict(unprefixed('lang_encoder.', loaded));
  tf.dispose(Object.values(loaded));
  const same = tf.tidy(() => {
    const a = flamingo.forward({ inputIds: flamingoIds, media: media(trainTokens) }).logits;
    const m2 = perceiver2.forward(tf.reshape(trainTokens, [train.length, 1, 1, 49, 576]));
    const b = flamingo2.forward({ inputIds: flamingoIds, media: m2 }).logits;
    return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  });
  log(`  saved ${Object.keys(perceiver.stateDictShapes()).length + Object.keys(flamingo.stateDictShapes()).length} tensors to ${file}; reloaded logits differ by ${same}`);

  // ------------------------------------------------------------------ BLIP-2 bridge
  log('\n4. BLIP-2 bridge: Q-Former (8 queries, cross-attention to the vision tokens) + language projection → soft visual prompt');
  const qformer = new QFormer({
    hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 128, crossAttentionFrequency: 1,
    encoderHiddenSize: 576, numQueryTokens: 8, useTextInput: false, llmHiddenSize: 64,
  });
  const textIds = ids(train.map(caption)); // "a red circle <eoc>" [36, 5]
  const promptIds = ids(new Array(test.length).fill('a'));
  const blip2Inputs = (tokens: tf.Tensor, textIds_: tf.Tensor) =>
    buildLmInputs({ layout: 'lavis', visualEmbeds: qformer.forward(tokens), inputIds: textIds_, inputsEmbeds: lm.embedTokens(textIds_), promptLength: 1 });
  const blip2Predict = (tokens: tf.Tensor) =>
    tf.tidy(() => {
      const { inputsEmbeds, attentionMask } = blip2Inputs(tokens, promptIds);
      const { newTokens } = generate(lm, { inputsEmbeds, attentionMask, maxNewTokens: 2 });
      return newTokens.map((row) => row.map((id) => tok.decode([id])));
    });
  const lmIn = tf.tidy(() => blip2Inputs(trainTokens, textIds).inputsEmbeds);
  log(`  shapes: vision tokens ${shape(trainTokens)} → Q-Former + projection ${shapeOf(() => qformer.forward(trainTokens))} → LM input (queries ; text) ${shape(lmIn)}`);
  lmIn.dispose();
  log(`  before training: held-out ${accuracy(blip2Predict(testTokens), test)}`);
  await trainLoop('blip-2', trainableVariables(qformer), () => {
    const { inputsEmbeds, attentionMask, labels } = blip2Inputs(trainTokens, textIds);
    return causalLmLoss(lm.forward({ inputsEmbeds, attentionMask }).logits, labels);
  });
  log(`  after ${STEPS} steps: held-out ${accuracy(blip2Predict(testTokens), test)}`);

  tf.dispose([trainTokens, testTokens, flamingoIds, flamingoLabels, textIds, promptIds]);
  for (const m of [perceiver, flamingo, perceiver2, flamingo2, qformer, lm]) m.dispose();
  encoder.dispose();
  log(`\ndone; tensors left behind: ${tf.memory().numTensors - tensorsAtStart}`);
}

async function trainLoop(name: string, vars: tf.Variable[], loss: () => tf.Scalar): Promise<void> {
  const opt = tf.train.adam(2e-3);
  const t0 = performance.now();
  let first = 0;
  let last = 0;
  for (let step = 0; step < STEPS; step++) {
    const { value, grads } = tf.variableGrads(loss, vars);
    opt.applyGradients(grads as unknown as tf.NamedTensorMap & Record<string, tf.Variable>);
    last = value.dataSync()[0]!;
    if (step === 0) first = last;
    tf.dispose([value, ...Object.values(grads)]);
    if ((step + 1) % Math.max(1, Math.floor(STEPS / 4)) === 0) log(`  ${name} step ${step + 1}/${STEPS}: loss ${last.toFixed(3)}`);
  }
  opt.dispose();
  log(`  trained ${vars.length} bridge tensors: loss ${first.toFixed(3)} → ${last.toFixed(3)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

function prefixed(prefix: string, sd: StateDict): StateDict {
  return Object.fromEntries(Object.entries(sd).map(([k, v]) => [prefix + k, v]));
}

function unprefixed(prefix: string, sd: StateDict): StateDict {
  return Object.fromEntries(Object.entries(sd).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

function scenes224(n: number) {
  return `[${n}, 224, 224, 3]`;
}

main().catch((e) => {
  process.stderr.write(`demo failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
