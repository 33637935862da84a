import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { causalLmLoss, manualSeed } from '@vlm/core';
import { Blip2, Flamingo, Llava, probeQueries, smallFlamingoBridge, type FlamingoBridgeConfig } from '@vlm/pipelines';
import { writeBridge } from '@vlm/pipelines/node';
import { COLOURS, SHAPES, SIZES, canonicalCaption, cellOf, encodePng } from '@vlm/shapeworld';
import { viewsSideBySide } from '@vlm/frozen-loaders';
import { batchUnits, flamingoBatch, softPromptBatch, tokenize, unitDataset, type FlamingoBatch, type SoftPromptBatch, type Tokenized } from './batches';
import type { DemoArgs } from './cli-args';
import { heldOutScores, fewShotEpisodes, fewShotVqa, flamingoAnswerer, gateAblation, gateContributions, lmOnlyAnswerer, softPromptAnswerer } from './evaluate';
import { DEMO_VIEWS, cachedFeatures, loadFrozenModels, sideBySideEncoder, standardizeEncoder, trainingStatistics, writeStandardization, type FrozenModels } from './frozen-models';
import { writeReport } from './report';
import type { DemoResults } from './results';
import { demoSizes, worldSizes } from './sizes';
import { trainBridge, trainPhases, type TrainSettings } from './training';
import { buildWorldData } from './world-data';

type Log = (s?: string) => void;

/** The bridges' shapes (the saved configs repeat them; `caption`/`ask` rebuild from those): the apps' small Flamingo bridge. */
export function flamingoBridgeConfig(frozen: FrozenModels, quick: boolean): FlamingoBridgeConfig {
  return smallFlamingoBridge({ tokenWidth: frozen.encoder.tokenWidth, mediaTokenId: frozen.imageId, eocTokenId: frozen.eocId, perceiverDepth: quick ? 1 : 2, framesPerImage: DEMO_VIEWS.length });
}

export function blip2QFormerArgs(frozen: FrozenModels) {
  return {
    hiddenSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    intermediateSize: 256,
    crossAttentionFrequency: 1,
    encoderHiddenSize: frozen.encoder.tokenWidth,
    numQueryTokens: 32, // as BLIP-2
    llmHiddenSize: frozen.lm.info.embedDim,
    vocabSize: frozen.tokenizer.vocabSize,
    maxPositionEmbeddings: 64,
  };
}

/** `npm run demo [-- --quick ...]`: every pipeline and experiment; writes results.json, report.html, bridges, logs, checkpoints. */
export async function runAll(args: DemoArgs, log: Log): Promise<DemoResults> {
  const t0 = performance.now();
  const sizes = demoSizes(args.quick, args.steps);
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  mkdirSync(args.out, { recursive: true });
  const tensorsAtStart = tf.memory().numTensors;
  manualSeed(args.seed);

  log('1. Frozen parts: the pretrained MobileNetV2 embedded in nsfwjs, and the world\'s frozen LM');
  const frozen = await loadFrozenModels();
  log(`  encoder: ${frozen.encoder.name}, ${frozen.encoder.numTokens} tokens × ${frozen.encoder.tokenWidth} per image`);
  log(`  LM: ${frozen.lmSource}: ${frozen.lm.info.numLayers} layers, width ${frozen.lm.info.hiddenSize}, vocab ${frozen.lm.info.vocabSize}`);

  log(`\n2. Data: @vlm/shapeworld scenes, captions, questions and few-shot episodes (seeded)  [${elapsed()}]`);
  const data = buildWorldData(sizes, args.seed);
  let t = performance.now();
  const cache = await cachedFeatures(frozen.encoder, data.bank.images, JSON.stringify({ world: '@vlm/shapeworld', seed: args.seed, sizes: worldSizes(sizes) }), join(args.out, 'features'));
  const rawFeatures = cache.features as tf.Tensor3D;
  log(`  ${data.bank.images.length} images drawn and ${cache.fromStore ? 'their features read from' : 'encoded once by the frozen encoder into'} ${join(args.out, 'features')} in ${((performance.now() - t) / 1000).toFixed(1)} s → [${rawFeatures.shape}]`);
  // Frozen per-channel standardization with the training images' statistics (saved for `caption`/`ask`).
  const trainImages = [...new Set([...data.train.captions, ...data.train.qa, ...data.train.episodes].flatMap((e) => e.images))];
  const stats = trainingStatistics(rawFeatures, trainImages);
  const encoder = standardizeEncoder(frozen, stats);
  tf.dispose([stats.mean, stats.std]);
  const features = encoder.standardize(rawFeatures);
  log(`  tokens standardized per channel with the statistics of the ${trainImages.length} training images → ${writeStandardization(args.out, encoder)}`);
  log(`  training: ${data.train.captions.length} captions, ${data.train.qa.length} questions, ${data.train.episodes.length} episodes; held out (compositional split): ${data.heldOut.scenes.length} scenes`);

  const tok = frozen.tokenizer;
  const settings: TrainSettings = { out: args.out, seed: args.seed, resume: args.resume, checkpointEvery: sizes.checkpointEvery, lr: 1e-3, log };
  const capT = data.train.captions.map((e) => tokenize(tok, e));
  const qaT = data.train.qa.map((e) => tokenize(tok, e));
  const epT = data.train.episodes.map((e) => tokenize(tok, e));

  // ------------------------------------------------------------------ Flamingo
  log(`\n3. Flamingo: Perceiver Resampler + gated cross-attention before every LM layer; image–caption pairs first, then captions, VQA and interleaved episodes  [${elapsed()}]`);
  const flamingo = new Flamingo({ vision: frozen.encoder, lm: frozen.lm, bridge: flamingoBridgeConfig(frozen, args.quick), tokenizer: tok });
  const gateTrack = () => Object.fromEntries(flamingo.gateValues().flatMap((g) => [[`gate.${g.layer}.attn`, g.attn], [`gate.${g.layer}.ff`, g.ff]]));
  // context swap: a colour word of the targets is read as another colour (see swapContextWords)
  const colourIds = COLOURS.map((c) => tok.tokenToId(c)!);
  const swap = (u: Tokenized[], view: number) => ({ words: colourIds, rate: sizes.contextSwap, seed: args.seed * 7919 + view * 104729 + u[0]!.images[0]! });
  const flamingoData = (examples: Tokenized[]) =>
    unitDataset(batchUnits(examples, sizes.batchSize, args.seed), (u, view) => flamingoBatch(u, features, frozen.padId, swap(u, view)), sizes.swapViews);
  const flamingoRun = await trainPhases<FlamingoBatch>(
    'flamingo',
    flamingo,
    [
      { name: 'flamingo-pairs', data: flamingoData(capT), steps: sizes.pairSteps },
      { name: 'flamingo', data: flamingoData([...capT, ...qaT, ...epT]), steps: sizes.steps },
    ],
    (b) => causalLmLoss(flamingo.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, visionTokens: b.visionTokens }).logits, b.labels),
    settings,
    gateTrack,
  );
  logRun(log, flamingoRun);
  const flamingoAnswer = flamingoAnswerer(flamingo, features);
  t = performance.now();
  const flamingoHeld = heldOutScores(flamingoAnswer, data);
  log(`  held out: ${fmt(flamingoHeld.scores)}  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  log(`  gates tanh(α): ${flamingo.gateValues().map((g) => `layer ${g.layer} attn ${g.attn.toFixed(3)} ff ${g.ff.toFixed(3)}`).join('; ')}`);
  const contribution = gateContributions(flamingo, data, features, tok, frozen.padId);
  log(`  gated updates / hidden states: ${contribution.map((c) => `layer ${c.layer} attn ${c.attn.toFixed(3)} ff ${c.ff.toFixed(3)}`).join('; ')}`);
  const ablation = gateAblation(flamingo, flamingoAnswer, data);
  log(`  ablation (gates forced to 0): ${ablation.map((a) => `${a.layer === 'all' ? 'all' : `layer ${a.layer}`}: colour ${pct(a.caption_color)} shape ${pct(a.caption_shape)}`).join('; ')}`);

  // ------------------------------------------------------------------ BLIP-2
  log(`\n4. BLIP-2: Q-Former with 32 queries, 16 reading each view; stage 1 ITC + ITM + ITG, stage 2 soft visual prompt into the frozen LM on captions, stage 3 instructions (captions + questions)  [${elapsed()}]`);
  const blip2 = new Blip2({ vision: frozen.encoder, lm: frozen.lm, qformer: blip2QFormerArgs(frozen), stage1: { embedDim: 64, decoderStartTokenId: frozen.eocId }, imageTokenId: frozen.imageId, tokenizer: tok, framesPerImage: DEMO_VIEWS.length, splitQueries: true });
  const stage1Units = batchUnits(data.train.captions.map((e) => ({ ids: tok.encode(canonicalCaption(data.bank.scenes[e.scene]!)), promptLength: 0, images: e.images })), Math.max(4, sizes.batchSize), args.seed);
  const stage1Run = await trainBridge<{ visionTokens: tf.Tensor; inputIds: tf.Tensor; attentionMask: tf.Tensor }>(
    'blip2-stage1',
    blip2.stage1!,
    unitDataset(stage1Units, (u) => {
      const b = flamingoBatch(u, features, frozen.padId);
      const visionTokens = tf.squeeze(b.visionTokens, [1]); // one image per caption: [b, n, d]
      tf.dispose([b.labels, b.visionTokens]);
      return { visionTokens, inputIds: b.inputIds, attentionMask: b.attentionMask };
    }),
    (b) => blip2.stage1Losses(b).total,
    sizes.stage1Steps,
    settings,
  );
  logRun(log, stage1Run);
  const retrieval = (() => {
    const captions = data.heldOut.scenes.map((i) => tok.encode(canonicalCaption(data.bank.scenes[i]!)));
    const width = Math.max(...captions.map((c) => c.length));
    const ids = tf.tensor2d(captions.map((c) => [...c, ...new Array<number>(width - c.length).fill(frozen.padId)]), undefined, 'int32');
    const mask = tf.tensor2d(captions.map((c) => [...c.map(() => 1), ...new Array<number>(width - c.length).fill(0)]), undefined, 'int32');
    const visionTokens = tf.gather(features, data.heldOut.scenes);
    try {
      return blip2.retrieval({ visionTokens, inputIds: ids, attentionMask: mask });
    } finally {
      tf.dispose([ids, mask, visionTokens]);
    }
  })();
  log(`  stage-1 retrieval on held-out scenes: image→text R@1 ${pct(retrieval.i2t_r1)}, text→image R@1 ${pct(retrieval.t2i_r1)}`);
  const softLoss = (m: Blip2 | Llava) => (b: SoftPromptBatch) => m.loss({ visionTokens: b.visionTokens, inputIds: b.inputIds, attentionMask: b.attentionMask, promptLength: b.promptLength, labels: b.labels });
  // the soft-prompt bridges train with the same context swap as Flamingo
  const softData = (m: Blip2 | Llava, examples: Tokenized[], tokens = features) =>
    unitDataset(batchUnits(examples, sizes.batchSize, args.seed), (u, view) => softPromptBatch(m, u, tokens, frozen.padId, frozen.imageId, swap(u, view)), sizes.swapViews);
  const blip2Run = await trainPhases<SoftPromptBatch>(
    'blip2',
    { qformer: blip2.qformer },
    [
      { name: 'blip2-stage2', data: softData(blip2, capT), steps: sizes.pairSteps },
      { name: 'blip2', data: softData(blip2, [...capT, ...qaT]), steps: sizes.steps },
    ],
    softLoss(blip2),
    settings,
  );
  logRun(log, blip2Run);
  const blip2Answer = softPromptAnswerer(blip2, features, frozen.eocId);
  const blip2Held = heldOutScores(blip2Answer, data);
  log(`  held out: ${fmt(blip2Held.scores)}`);

  // ------------------------------------------------------------------ baselines
  log(`\n5. Baselines on the same data and budget: the frozen LM alone (no image), and an LLaVA-style MLP projector (alignment on captions, then the mixture)  [${elapsed()}]`);
  const lmOnly = lmOnlyAnswerer(frozen);
  const lmHeld = heldOutScores(lmOnly, data);
  log(`  LM alone: ${fmt(lmHeld.scores)}`);
  // An LLaVA projector spends an LM position per token: it reads the views side by side (49 tokens
  // of both views' channels), so its prompt stays as long as one view's tokens.
  const sideBySide = sideBySideEncoder(encoder);
  const sideFeatures = viewsSideBySide(features, sideBySide.views);
  const llava = new Llava({ vision: sideBySide.encoder, lm: frozen.lm, projector: { inFeatures: sideBySide.encoder.tokenWidth, outFeatures: frozen.lm.info.embedDim }, imageTokenId: frozen.imageId, tokenizer: tok });
  const llavaRun = await trainPhases<SoftPromptBatch>(
    'mlp-projector',
    llava,
    [
      { name: 'mlp-projector-align', data: softData(llava, capT, sideFeatures), steps: sizes.pairSteps },
      { name: 'mlp-projector', data: softData(llava, [...capT, ...qaT], sideFeatures), steps: sizes.steps },
    ],
    softLoss(llava),
    settings,
  );
  logRun(log, llavaRun);
  const llavaHeld = heldOutScores(softPromptAnswerer(llava, sideFeatures, frozen.eocId), data);
  log(`  MLP projector: ${fmt(llavaHeld.scores)}`);

  // ------------------------------------------------------------------ experiments
  log(`\n6. Q-Former probe: 32 query outputs over held-out placements; similarity between queries; per-query linear probes  [${elapsed()}]`);
  const probeIdx = data.probeScenes;
  const queryOut = tf.tidy(() => blip2.queryOutputs(tf.gather(features, probeIdx)));
  const objects = probeIdx.map((i) => data.bank.scenes[i]!.objects[0]!);
  const probe = probeQueries(queryOut, {
    labels: {
      color: objects.map((o) => COLOURS.indexOf(o.colour)),
      shape: objects.map((o) => SHAPES.indexOf(o.shape)),
      size: objects.map((o) => SIZES.indexOf(o.size)),
      position: objects.map((o) => cellOf(o)),
    },
    seed: args.seed,
  });
  queryOut.dispose();
  const best = (attr: string) => probe.perQuery.reduce((a, b) => (b[attr]! > a[attr]! ? b : a));
  log(`  best query per attribute: ${['color', 'shape', 'size', 'position'].map((a) => `${a} q${best(a).query} ${pct(best(a)[a]!)} (chance ${pct(probe.chance[a]!)})`).join(', ')}`);

  log(`\n7. Few-shot: implied-task episodes (0/2/4 shots) and VQA with 0/2/3 solved examples  [${elapsed()}]`);
  const fewShot = { flamingo: fewShotEpisodes(flamingoAnswer, data.fewShotEpisodes), blip2: fewShotEpisodes(blip2Answer, data.fewShotEpisodes), lm_only: fewShotEpisodes(lmOnly, data.fewShotEpisodes) };
  const fewShotMix = { flamingo: fewShotEpisodes(flamingoAnswer, data.fewShotMixtures), blip2: fewShotEpisodes(blip2Answer, data.fewShotMixtures), lm_only: fewShotEpisodes(lmOnly, data.fewShotMixtures) };
  const fewShotV = { flamingo: fewShotVqa(flamingoAnswer, data), blip2: fewShotVqa(blip2Answer, data), lm_only: fewShotVqa(lmOnly, data) };
  for (const [k, v] of Object.entries(fewShotMix)) log(`  two-attribute episodes (held-out tasks) ${k}: ${Object.entries(v).map(([s, a]) => `${s}-shot ${a === null ? 'n/a (too long for the LM)' : pct(a)}`).join(', ')}`);
  for (const [k, v] of Object.entries(fewShot)) log(`  episodes ${k}: ${Object.entries(v).map(([s, a]) => `${s}-shot ${a === null ? 'n/a (too long for the LM)' : pct(a)}`).join(', ')}`);
  for (const [k, v] of Object.entries(fewShotV)) log(`  VQA ${k}: ${Object.entries(v).map(([s, a]) => `${s}-shot ${a === null ? 'n/a (too long for the LM)' : pct(a)}`).join(', ')}`);

  // ------------------------------------------------------------------ outputs
  const bridges = {
    flamingo: await writeBridge(args.out, flamingo.saveBridge()),
    blip2: await writeBridge(args.out, blip2.saveBridge()),
    mlp_projector: await writeBridge(args.out, llava.saveBridge(), 'mlp-projector'),
  };
  const samples = data.heldOut.scenes.slice(0, 8).map((i, k) => ({
    image: `data:image/png;base64,${Buffer.from(encodePng(data.bank.images[i]!)).toString('base64')}`,
    truth: `a ${data.heldOut.captions[k]!.target}`,
    question: data.heldOut.qa[k]!.prompt.replace('<image> question: ', '').replace(' answer:', ''),
    answer: data.heldOut.qa[k]!.target,
    flamingo: { caption: `a ${flamingoHeld.samples.captions[k]!}`, answer: flamingoHeld.samples.answers[k]! },
    blip2: { caption: `a ${blip2Held.samples.captions[k]!}`, answer: blip2Held.samples.answers[k]! },
    mlp_projector: { caption: `a ${llavaHeld.samples.captions[k]!}`, answer: llavaHeld.samples.answers[k]! },
    lm_only: { caption: `a ${lmHeld.samples.captions[k]!}`, answer: lmHeld.samples.answers[k]! },
  }));
  const gates = flamingoRun.steps.flatMap((s) =>
    flamingo.gateValues().map((g) => ({ step: s.step, layer: g.layer, attn: s[`gate.${g.layer}.attn`] ?? 0, ff: s[`gate.${g.layer}.ff`] ?? 0 })),
  );
  const results: DemoResults = {
    flamingo: { heldout: flamingoHeld.scores, gates, gate_ablation: ablation, gate_contribution: contribution, loss: losses(flamingoRun), train_seconds: flamingoRun.seconds, trainable_parameters: flamingoRun.parameters },
    blip2: {
      heldout: blip2Held.scores,
      retrieval,
      stage1_loss: losses(stage1Run),
      loss: losses(blip2Run),
      train_seconds: stage1Run.seconds + blip2Run.seconds,
      trainable_parameters: blip2Run.parameters,
    },
    baselines: { lm_only: lmHeld.scores, mlp_projector: { ...llavaHeld.scores, loss: losses(llavaRun), train_seconds: llavaRun.seconds, trainable_parameters: llavaRun.parameters } },
    qformer_probe: {
      query_cosine: probe.queryCosine,
      across_images: probe.acrossImages,
      per_query: probe.perQuery.map((q) => ({ query: q.query, color: q.color!, shape: q.shape!, size: q.size!, position: q.position! })),
      chance: probe.chance,
      images: probeIdx.length,
    },
    few_shot: fewShot,
    few_shot_mixtures: fewShotMix,
    few_shot_vqa: fewShotV,
    samples,
    bridges,
    seconds: (performance.now() - t0) / 1000,
    configuration: {
      quick: args.quick,
      seed: args.seed,
      backend: tf.getBackend(),
      native: args.native,
      resume: args.resume,
      sizes,
      encoder: frozen.encoder.name,
      lm: frozen.lmSource,
      flamingo: flamingoBridgeConfig(frozen, args.quick),
      blip2_qformer: blip2QFormerArgs(frozen),
      blip2_frames: { framesPerImage: blip2.framesPerImage, splitQueries: blip2.splitQueries, views: DEMO_VIEWS.map((v) => v.name) },
      mlp_projector: llava.projector.args,
      images: data.bank.images.length,
    },
  };
  writeFileSync(join(args.out, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  writeReport(join(args.out, 'report.html'), results);
  log(`\nwrote ${join(args.out, 'results.json')}, ${join(args.out, 'report.html')}, bridges (${Object.values(bridges).map((b) => b.weights).join(', ')}), metrics/ and checkpoints/`);

  cache.dispose();
  tf.dispose([features, sideFeatures]);
  for (const m of [flamingo, blip2, llava]) m.dispose();
  sideBySide.encoder.dispose();
  frozen.lm.dispose();
  frozen.encoder.dispose();
  log(`done in ${results.seconds.toFixed(1)} s; tensors left behind: ${tf.memory().numTensors - tensorsAtStart}`);
  return results;
}

const losses = (run: { steps: Array<{ step: number; loss: number }> }) => run.steps.map((s) => ({ step: s.step, loss: s.loss }));
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const fmt = (h: { caption_color: number; caption_shape: number; vqa: number }) => `caption colour ${pct(h.caption_color)}, caption shape ${pct(h.caption_shape)}, VQA ${pct(h.vqa)}`;
function logRun(log: Log, run: { name: string; steps: Array<{ loss: number }>; seconds: number; parameters: number }) {
  const first = run.steps[0]?.loss ?? NaN;
  const last = run.steps[run.steps.length - 1]?.loss ?? NaN;
  log(`  ${run.name}: ${run.parameters} trainable weights, loss ${first.toFixed(3)} → ${last.toFixed(3)} in ${run.seconds.toFixed(1)} s`);
}
