import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { IGNORE_INDEX, causalLmLoss, manualSeed, readSafetensors, trainableVariables, type StateDict } from '@vlm/core';
import { IMAGE_VIEW, MAX_CHANNEL_VIEW, MultiViewVisionEncoder, loadTokenizer } from '@vlm/frozen-loaders';
import { Blip2, Flamingo, Llava, paddedLmRows, parseOpenFlamingoConfig, probeQueries, smallFlamingoBridge, tokenizePromptTarget, type OpenFlamingoConfig } from '@vlm/pipelines';
import { loadBlip2, readBridge, writeBridge } from '@vlm/pipelines/node';

// Real tiny checkpoints: the repo's vendored golden cases (made with OpenFlamingo and Hugging Face transformers).
const GOLDEN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../golden');
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

function openFlamingoCase(name: string): { config: OpenFlamingoConfig; weights: StateDict; inputs: StateDict; outputs: StateDict } {
  const s = JSON.parse(readFileSync(join(GOLDEN, `flamingo_e2e/${name}.json`), 'utf8'));
  const { tensors } = readSafetensors(readFileSync(join(GOLDEN, `flamingo_e2e/${name}.safetensors`)));
  const pick = (f: (k: string) => boolean) => Object.fromEntries(Object.entries(tensors).filter(([k]) => f(k)));
  const inputs = pick((k) => k.startsWith('input.'));
  const config = parseOpenFlamingoConfig({
    open_clip_config: s.open_clip_config,
    text_config: s.config,
    perceiver_kwargs: s.perceiver_kwargs,
    xattn_kwargs: s.xattn_kwargs,
    cross_attn_every_n_layers: s.flamingo.cross_attn_every_n_layers,
    media_token_id: inputs['input.media_token_id']!.dataSync()[0],
    eoc_token_id: inputs['input.eoc_token_id']!.dataSync()[0],
  });
  return { config, weights: pick((k) => !k.startsWith('input.') && !k.startsWith('output.')), inputs, outputs: pick((k) => k.startsWith('output.')) };
}

describe('Flamingo (a real tiny OpenFlamingo checkpoint)', () => {
  let c: ReturnType<typeof openFlamingoCase>;
  let model: Flamingo;
  beforeAll(() => {
    c = openFlamingoCase('flamingo_e2e_n2');
    model = Flamingo.fromOpenFlamingo({ config: c.config, weights: c.weights });
  });
  afterAll(() => {
    model.dispose();
    for (const d of [c.weights, c.inputs, c.outputs]) tf.dispose(Object.values(d));
  });

  test('forward and generate reproduce the upstream logits and greedy ids, without leaking tensors', () => {
    const visionX = c.inputs['input.vision_x']!;
    const langX = c.inputs['input.lang_x']!;
    const attentionMask = c.inputs['input.attention_mask']!;
    const before = tf.memory().numTensors;
    const logits = tf.tidy(() => {
      const [b, t, f, ...rest] = visionX.shape;
      const tokens = model.encodeImages(tf.reshape(visionX, [b! * t! * f!, ...rest]));
      const visionTokens = tf.reshape(tokens, [b!, t!, tokens.shape[1], tokens.shape[2]]);
      // compare where attention_mask == 1 (padded positions are implementation-defined)
      const mask = tf.expandDims(tf.cast(attentionMask, 'float32'), -1);
      return tf.mul(tf.sub(model.forward({ inputIds: langX, attentionMask, visionTokens }).logits, c.outputs['output.logits']!), mask);
    });
    expect(tf.tidy(() => tf.max(tf.abs(logits)).dataSync()[0]!)).toBeLessThan(1e-4);
    logits.dispose();
    const gen = model.generate({ images: visionX, prompt: langX, attentionMask, maxNewTokens: c.outputs['output.generated_ids']!.shape[1]! - langX.shape[1]! });
    expect(gen.sequences.arraySync()).toEqual(c.outputs['output.generated_ids']!.arraySync());
    expect(gen.newTokens.length).toBe(langX.shape[0]);
    tf.dispose([gen.sequences, gen.stepLogits]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('generateAsync gives generate\'s ids and logits with no synchronous read; checkInputIds makes the forward\'s checks on the host', async () => {
    const visionX = c.inputs['input.vision_x']!;
    const langX = c.inputs['input.lang_x']!;
    const attentionMask = c.inputs['input.attention_mask']!;
    const maxNewTokens = c.outputs['output.generated_ids']!.shape[1]! - langX.shape[1]!;
    const before = tf.memory().numTensors;
    const sync = model.generate({ images: visionX, prompt: langX, attentionMask, maxNewTokens });
    const reads = vi.spyOn(tf.engine(), 'readSync');
    const out = await model.generateAsync({ images: visionX, prompt: langX, attentionMask, maxNewTokens });
    expect(reads.mock.calls.length).toBe(0);
    reads.mockRestore();
    expect(await out.sequences.array()).toEqual(c.outputs['output.generated_ids']!.arraySync());
    expect(out.newTokens).toEqual(sync.newTokens);
    expect(maxDiff(out.stepLogits, sync.stepLogits)).toBe(0);
    tf.dispose([sync.sequences, sync.stepLogits, out.sequences, out.stepLogits]);
    expect(await model.gateValuesAsync()).toEqual(model.gateValues());
    expect(tf.memory().numTensors).toBe(before);

    const ids = langX.arraySync() as number[][];
    const images = visionX.shape[1]!;
    expect(() => model.checkInputIds(ids, images)).not.toThrow();
    expect(() => model.checkInputIds(ids, images - 1, 'my rows')).toThrow(/media_locations names \d+ image\(s\) in row 0 \(my rows\)/);
    expect(() => model.checkInputIds([[0, model.lm.vocabSize]], images)).toThrow(`Flamingo inputIds must be in [0, ${model.lm.vocabSize}), got values in [0, ${model.lm.vocabSize}]`);
  });

  test('the bridge is the only trainable part; saveBridge → loadBridge into a fresh model gives identical logits; OpenFlamingo names', () => {
    const names = trainableVariables(model).length;
    expect(names).toBe(model.perceiver.parameters().length + model.lang.parameters().length);
    expect(model.lm.parameters().every((v) => !v.trainable)).toBe(true);
    const saved = model.saveBridge();
    const keys = Object.keys(JSON.parse(new TextDecoder().decode(saved.weights.slice(8, 8 + Number(new DataView(saved.weights.buffer).getBigUint64(0, true))))));
    expect(keys.some((k) => k.startsWith('perceiver.layers.0.'))).toBe(true);
    expect(keys.some((k) => k.startsWith('lang_encoder.gated_cross_attn_layers.1.'))).toBe(true);
    expect(saved.config.mediaTokenId).toBe(c.config.media_token_id);

    manualSeed(1);
    const fresh = new Flamingo({ vision: model.vision, lm: model.lm, bridge: saved.config });
    const ids = c.inputs['input.lang_x']!;
    const tokens = tf.randomNormal([ids.shape[0]!, 2, model.vision.numTokens, model.vision.tokenWidth], 0, 1, 'float32', 3);
    const differ = tf.tidy(() => maxDiff(fresh.forward({ inputIds: ids, visionTokens: tokens }).logits, model.forward({ inputIds: ids, visionTokens: tokens }).logits));
    expect(differ).toBeGreaterThan(1e-3); // fresh gates are 0: the fresh model is the bare LM
    fresh.loadBridge(saved);
    expect(tf.tidy(() => maxDiff(fresh.forward({ inputIds: ids, visionTokens: tokens }).logits, model.forward({ inputIds: ids, visionTokens: tokens }).logits))).toBe(0);
    expect(fresh.gateValues()).toEqual(model.gateValues());
    tokens.dispose();
    fresh.dispose(); // not the owner of vision / lm
    expect(model.lm.parameters()[0]!.isDisposed).toBe(false);
    expect(() => fresh.loadBridge({ ...saved, kind: 'blip2' })).toThrow(/expected a 'flamingo' bridge, got 'blip2'/);
  });

  test('framesPerImage: each image\'s tokens are split into frames, each with its frame embedding; saved and loaded with the bridge', () => {
    manualSeed(2);
    const bridge = { ...model.bridge, perceiver: { ...model.bridge.perceiver, maxNumFrames: 2 }, framesPerImage: 2 };
    const twoViews = new Flamingo({ vision: model.vision, lm: model.lm, bridge });
    const [n, d] = [model.vision.numTokens, model.vision.tokenWidth];
    const tokens = tf.randomNormal([2, 1, 2 * n, d], 0, 1, 'float32', 5);
    const before = tf.memory().numTensors;
    const latents = twoViews.resample(tokens);
    const asFrames = tf.tidy(() => twoViews.perceiver.forward(tf.reshape(tokens, [2, 1, 2, n, d])));
    const asOneFrame = tf.tidy(() => twoViews.perceiver.forward(tf.reshape(tokens, [2, 1, 1, 2 * n, d])));
    expect(maxDiff(latents, asFrames)).toBe(0);
    expect(maxDiff(latents, asOneFrame)).toBeGreaterThan(1e-4); // the frame embeddings tell the halves apart
    tf.dispose([latents, asFrames, asOneFrame]);
    expect(tf.memory().numTensors).toBe(before);
    const saved = twoViews.saveBridge();
    expect(saved.config.framesPerImage).toBe(2);
    expect(saved.config.perceiver.maxNumFrames).toBe(2);
    const again = new Flamingo({ vision: model.vision, lm: model.lm, bridge: saved.config });
    again.loadBridge(saved);
    const ids = c.inputs['input.lang_x']!;
    const both = tf.randomNormal([ids.shape[0]!, 2, 2 * n, d], 0, 1, 'float32', 6);
    expect(tf.tidy(() => maxDiff(again.forward({ inputIds: ids, visionTokens: both }).logits, twoViews.forward({ inputIds: ids, visionTokens: both }).logits))).toBe(0);
    expect(() => twoViews.resample(tf.zeros([1, 1, 2 * n + 1, d]))).toThrow(/tokens a multiple of framesPerImage 2, got \[1,1,\d+,32\]/);
    expect(() => new Flamingo({ vision: model.vision, lm: model.lm, bridge: { ...model.bridge, framesPerImage: 2 } })).toThrow(/framesPerImage 2 needs the perceiver's frame embeddings \(perceiver.maxNumFrames >= 2\), got maxNumFrames/);
    expect(() => new Flamingo({ vision: model.vision, lm: model.lm, bridge: { ...bridge, framesPerImage: 0 } })).toThrow(/framesPerImage must be a positive integer, got 0/);
    expect(() => new Flamingo({ vision: model.vision, lm: model.lm, bridge: { ...bridge, perceiver: { ...bridge.perceiver, maxNumFrames: n + 1 }, framesPerImage: n + 1 } })).toThrow(
      new RegExp(`encoder's ${n} tokens per image do not split into framesPerImage ${n + 1} frames`),
    );
    tf.dispose([tokens, both]);
    twoViews.dispose();
    again.dispose();
  });

  test('errors say what was expected', () => {
    expect(() => parseOpenFlamingoConfig({ open_clip_config: {} })).toThrow(/missing or invalid field\(s\): text_config \(an object\), perceiver_kwargs/);
    expect(() => new Flamingo({ vision: model.vision, lm: model.lm, bridge: { ...model.bridge, perceiver: { ...model.bridge.perceiver, dim: 7 } } })).toThrow(
      /perceiver's dim \(7\) must equal the vision encoder's token width \(32\)/,
    );
    expect(() => model.generate({ images: [[]], prompt: 'x' })).toThrow(/needs a tokenizer/);
    expect(() => model.forward({ inputIds: c.inputs['input.lang_x']! })).toThrow(/expected visionTokens/);
  });
});

describe('Blip2 and Llava (a real tiny Blip2ForConditionalGeneration)', () => {
  let blip2: Blip2;
  beforeAll(async () => {
    blip2 = await loadBlip2(join(GOLDEN, 'blip2/tiny-blip2-opt'));
  });
  afterAll(() => blip2.dispose());

  test('interleaved images: each <image> becomes numQueryTokens placeholders; two images = two soft prompts in order', () => {
    const id = blip2.imageTokenId!;
    const Q = blip2.numVisualTokens;
    expect(blip2.expandImageTokens([[5, id, 7, id, 9]], 2)).toEqual([[5, ...Array(Q).fill(id), 7, ...Array(Q).fill(id), 9]]);
    expect(blip2.expandImageTokens([[5, 7]], 2)[0]!.slice(0, 2 * Q)).toEqual(Array(2 * Q).fill(id));
    expect(() => blip2.expandImageTokens([[5, id]], 2)).toThrow(/1 <image> marker\(s\) for 2 image\(s\)/);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const tokens = tf.randomNormal([1, 2, blip2.vision.numTokens, blip2.vision.tokenWidth], 0, 1, 'float32', 5);
      const ids = tf.tensor2d(blip2.expandImageTokens([[2, id, 7, id, 9]], 2), undefined, 'int32');
      const { inputsEmbeds, labels } = blip2.lmInputs({ visionTokens: tokens, inputIds: ids });
      const first = blip2.softPrompt(tf.slice(tokens, [0, 0, 0, 0], [1, 1, -1, -1]).squeeze([1]));
      const second = blip2.softPrompt(tf.slice(tokens, [0, 1, 0, 0], [1, 1, -1, -1]).squeeze([1]));
      expect(maxDiff(tf.slice(inputsEmbeds, [0, 1, 0], [1, Q, -1]), first)).toBe(0);
      expect(maxDiff(tf.slice(inputsEmbeds, [0, 2 + Q, 0], [1, Q, -1]), second)).toBe(0);
      expect((labels.arraySync() as number[][])[0]!.filter((v) => v === -100).length).toBe(2 * Q);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('Blip2 bridge save/load round trip under Hugging Face names; stage-1 heads give losses and retrieval recall', async () => {
    const saved = blip2.saveBridge();
    const dir = mkdtempSync(join(tmpdir(), 'vlm-pipelines-'));
    await writeBridge(dir, saved);
    const back = await readBridge(dir, 'blip2');
    const { tensors } = readSafetensors(back.weights);
    expect(Object.keys(tensors)).toContain('query_tokens');
    expect(Object.keys(tensors)).toContain('language_projection.weight');
    tf.dispose(Object.values(tensors));
    const cfg = back.config as { qformer: object };
    manualSeed(2);
    const fresh = new Blip2({ vision: blip2.vision, lm: blip2.lm, qformer: cfg.qformer, imageTokenId: blip2.imageTokenId });
    fresh.loadBridge(back);
    const tokens = tf.randomNormal([2, blip2.vision.numTokens, blip2.vision.tokenWidth], 0, 1, 'float32', 9);
    expect(tf.tidy(() => maxDiff(fresh.softPrompt(tokens), blip2.softPrompt(tokens)))).toBe(0);
    fresh.dispose();
    await expect(readBridge(dir, 'flamingo')).rejects.toThrow(/no .*flamingo\.safetensors/);

    const { llmHiddenSize, encoderHiddenSize } = blip2.qformer.args;
    manualSeed(4);
    const staged = new Blip2({
      vision: blip2.vision,
      lm: blip2.lm,
      imageTokenId: blip2.imageTokenId,
      qformer: { hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, encoderHiddenSize, numQueryTokens: 4, llmHiddenSize, vocabSize: 30, maxPositionEmbeddings: 8 },
      stage1: { embedDim: 8 },
    });
    const text = tf.tensor2d([[1, 5, 6, 0], [1, 7, 8, 9]], undefined, 'int32');
    const losses = staged.stage1Losses({ visionTokens: tokens, inputIds: text, attentionMask: tf.tensor2d([[1, 1, 1, 0], [1, 1, 1, 1]], undefined, 'int32') });
    for (const l of [losses.itc, losses.itm, losses.itg]) expect(Number.isFinite(l.dataSync()[0])).toBe(true);
    tf.dispose(Object.values(losses));
    const r = staged.retrieval({ visionTokens: tokens, inputIds: text });
    for (const v of [r.i2t_r1, r.t2i_r1]) expect([0, 0.5, 1]).toContain(v);
    const savedStaged = staged.saveBridge();
    const stagedTensors = readSafetensors(savedStaged.weights).tensors;
    expect(Object.keys(stagedTensors)).toEqual(expect.arrayContaining(['vision_proj.weight', 'text_proj.weight', 'itm_head.weight', 'temp', 'embeddings.word_embeddings.weight']));
    tf.dispose(Object.values(stagedTensors));
    staged.loadBridge(savedStaged);
    staged.dispose();
    tf.dispose([tokens, text]);
    expect(() => new Blip2({ vision: blip2.vision, lm: blip2.lm, qformer: { encoderHiddenSize, llmHiddenSize: 5 } })).toThrow(/LM's embedding width 48, got llmHiddenSize 5/);
  }, 180_000);

  test('Blip2 framesPerImage: the Q-Former reads each view alone, soft prompts side by side; stage 1 and retrieval over the frames; saved and checked on load', () => {
    const views = new MultiViewVisionEncoder(blip2.vision, [IMAGE_VIEW, MAX_CHANNEL_VIEW], { ownsEncoder: false });
    const { llmHiddenSize, encoderHiddenSize } = blip2.qformer.args;
    const qformer = { hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, encoderHiddenSize, numQueryTokens: 4, llmHiddenSize, vocabSize: 30, maxPositionEmbeddings: 8 };
    manualSeed(5);
    const framed = new Blip2({ vision: views, lm: blip2.lm, imageTokenId: blip2.imageTokenId, qformer, stage1: { embedDim: 8 }, framesPerImage: 2 });
    const single = new Blip2({ vision: blip2.vision, lm: blip2.lm, imageTokenId: blip2.imageTokenId, qformer, stage1: { embedDim: 8 } });
    expect(framed.numVisualTokens).toBe(8);
    const saved = framed.saveBridge();
    expect((saved.config as { framesPerImage?: number }).framesPerImage).toBe(2);
    expect(() => single.loadBridge(saved)).toThrow(/the bridge reads 2 frame\(s\) per image, this model 1/);
    single.loadBridge(saved.weights); // the same weights, read without frames
    const before = tf.memory().numTensors;
    const n = blip2.vision.numTokens;
    tf.tidy(() => {
      const tokens = tf.randomNormal([2, 2 * n, blip2.vision.tokenWidth], 0, 1, 'float32', 11); // two views of two images
      const want = tf.concat([single.softPrompt(tf.slice(tokens, [0, 0, 0], [-1, n, -1])), single.softPrompt(tf.slice(tokens, [0, n, 0], [-1, n, -1]))], 1);
      expect(maxDiff(framed.softPrompt(tokens), want)).toBeLessThan(1e-5);
      expect(framed.queryOutputs(tokens).shape).toEqual([2, 8, 16]);
      const ids = tf.tensor2d(framed.expandImageTokens([[2, blip2.imageTokenId!, 7], [2, blip2.imageTokenId!, 9]], 1), undefined, 'int32');
      expect(ids.shape).toEqual([2, 10]);
      const { inputsEmbeds } = framed.lmInputs({ visionTokens: tokens, inputIds: ids });
      expect(maxDiff(tf.slice(inputsEmbeds, [0, 1, 0], [-1, 8, -1]), want)).toBeLessThan(1e-5);
      const text = tf.tensor2d([[1, 5, 6, 0], [1, 7, 8, 9]], undefined, 'int32');
      const losses = framed.stage1Losses({ visionTokens: tokens, inputIds: text });
      for (const l of [losses.itc, losses.itm, losses.itg]) expect(Number.isFinite(l.dataSync()[0])).toBe(true);
      const r = framed.retrieval({ visionTokens: tokens, inputIds: text });
      for (const v of [r.i2t_r1, r.t2i_r1]) expect([0, 0.5, 1]).toContain(v);
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(() => new Blip2({ vision: views, lm: blip2.lm, qformer, framesPerImage: 0 })).toThrow(/framesPerImage must be a positive integer, got 0/);
    expect(() => new Blip2({ vision: views, lm: blip2.lm, qformer, framesPerImage: 2 * n + 1 })).toThrow(new RegExp(`${2 * n} tokens per image do not split into framesPerImage ${2 * n + 1} frames`));
    // splitQueries: the 4 queries split between the two views, the soft prompt stays 4 vectors
    const split = new Blip2({ vision: views, lm: blip2.lm, imageTokenId: blip2.imageTokenId, qformer, framesPerImage: 2, splitQueries: true });
    expect(split.numVisualTokens).toBe(4);
    const savedSplit = split.saveBridge();
    expect(savedSplit.config).toMatchObject({ framesPerImage: 2, splitQueries: true });
    expect(() => framed.loadBridge(savedSplit)).toThrow(/reads 2 frame\(s\) per image with split queries, this model 2 \(build it/);
    tf.tidy(() => {
      const tokens = tf.randomNormal([1, 2 * n, blip2.vision.tokenWidth], 0, 1, 'float32', 12);
      const p = split.softPrompt(tokens);
      expect(p.shape).toEqual([1, 4, llmHiddenSize]);
      // the first two queries read view 1 only: changing view 2 leaves them as they were
      const other = tf.concat([tf.slice(tokens, [0, 0, 0], [-1, n, -1]), tf.randomNormal([1, n, blip2.vision.tokenWidth], 0, 1, 'float32', 13)], 1);
      const q = split.softPrompt(other);
      expect(maxDiff(tf.slice(p, [0, 0, 0], [-1, 2, -1]), tf.slice(q, [0, 0, 0], [-1, 2, -1]))).toBeLessThan(1e-5);
      expect(maxDiff(tf.slice(p, [0, 2, 0], [-1, 2, -1]), tf.slice(q, [0, 2, 0], [-1, 2, -1]))).toBeGreaterThan(1e-4);
    });
    expect(() => new Blip2({ vision: views, lm: blip2.lm, qformer: { ...qformer, numQueryTokens: 3 }, framesPerImage: 2, splitQueries: true })).toThrow(/numQueryTokens \(3\) to be a multiple of framesPerImage \(2\)/);
    split.dispose();
    framed.dispose();
    single.dispose();
  }, 120_000);

  test('Llava: trains only the projector against the frozen LM; HF LLaVA names', () => {
    manualSeed(6);
    const llava = new Llava({ vision: blip2.vision, lm: blip2.lm, imageTokenId: blip2.imageTokenId, projector: { inFeatures: blip2.vision.tokenWidth, outFeatures: blip2.lm.info.embedDim } });
    expect(llava.numVisualTokens).toBe(blip2.vision.numTokens);
    const vars = trainableVariables(llava);
    expect(vars.length).toBe(4);
    const tokens = tf.randomNormal([2, blip2.vision.numTokens, blip2.vision.tokenWidth], 0, 1, 'float32', 8);
    const ids = tf.tensor2d(llava.expandImageTokens([[2, 11, 12, 13], [2, 14, 15, 16]], 1), undefined, 'int32');
    const lmBefore = blip2.lm.parameters()[0]!.dataSync().slice();
    const opt = tf.train.adam(1e-2);
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { value, grads } = tf.variableGrads(() => llava.loss({ visionTokens: tokens, inputIds: ids, promptLength: 1 }), vars);
      opt.applyGradients(grads);
      losses.push(value.dataSync()[0]!);
      tf.dispose([value, ...Object.values(grads)]);
    }
    opt.dispose();
    expect(losses[4]!).toBeLessThan(losses[0]!);
    expect(blip2.lm.parameters()[0]!.dataSync()).toEqual(lmBefore);
    const projector = readSafetensors(llava.saveBridge().weights).tensors;
    tf.dispose(Object.values(projector));
    expect(Object.keys(projector).sort()).toEqual([
      'multi_modal_projector.linear_1.bias',
      'multi_modal_projector.linear_1.weight',
      'multi_modal_projector.linear_2.bias',
      'multi_modal_projector.linear_2.weight',
    ]);
    tf.dispose([tokens, ids]);
    llava.dispose();
  });
  test('loss with labels: the ids read may differ from the ids predicted (swapped context words); prompt, placeholders and padding still get no loss', () => {
    manualSeed(9);
    const llava = new Llava({ vision: blip2.vision, lm: blip2.lm, imageTokenId: blip2.imageTokenId, projector: { inFeatures: blip2.vision.tokenWidth, outFeatures: blip2.lm.info.embedDim } });
    const tokens = tf.randomNormal([2, blip2.vision.numTokens, blip2.vision.tokenWidth], 0, 1, 'float32', 8);
    const truth = tf.tensor2d(llava.expandImageTokens([[2, 11, 12, 13], [2, 14, 15, 0]], 1), undefined, 'int32');
    const read = tf.tensor2d(llava.expandImageTokens([[2, 11, 17, 13], [2, 14, 15, 0]], 1), undefined, 'int32'); // row 0 reads 17 where 12 is true
    const mask = tf.tensor2d(llava.expandImageTokens([[1, 1, 1, 1], [1, 1, 1, 0]], 1).map((r) => r.map((v) => (v === blip2.imageTokenId ? 1 : v))), undefined, 'int32');
    const before = tf.memory().numTensors;
    const args = { visionTokens: tokens, attentionMask: mask, promptLength: 1 };
    const same = tf.tidy(() => tf.sub(llava.loss({ ...args, inputIds: truth, labels: truth }), llava.loss({ ...args, inputIds: truth })).dataSync()[0]!);
    expect(same).toBe(0);
    const expected = tf.tidy(() => {
      const logits = llava.forward({ ...args, inputIds: read });
      return causalLmLoss(logits, llava.lmInputs({ ...args, inputIds: truth }).labels).dataSync()[0]!;
    });
    const swapped = tf.tidy(() => llava.loss({ ...args, inputIds: read, labels: truth }).dataSync()[0]!);
    const plain = tf.tidy(() => llava.loss({ ...args, inputIds: read }).dataSync()[0]!);
    expect(swapped).toBeCloseTo(expected, 6);
    expect(Math.abs(swapped - plain)).toBeGreaterThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
    const bad = tf.tensor2d([[1, 2]], undefined, 'int32');
    expect(() => llava.loss({ ...args, inputIds: read, labels: bad })).toThrow(/Llava\.loss: labels: expected int32 \[2,\d+\] \(aligned with inputIds\), got int32 \[1,2\]/);
    tf.dispose([tokens, truth, read, mask, bad]);
    llava.dispose();
  });
});

describe('probeQueries (the Q-Former probe)', () => {
  test('a query that carries an attribute is read by its probe; a query that ignores the image is not; cosine matrix is Q×Q', () => {
    const n = 80;
    const colour = Array.from({ length: n }, (_, i) => i % 4);
    const before = tf.memory().numTensors;
    const x = tf.tidy(() => {
      const noise = tf.randomNormal([n, 3, 8], 0, 1, 'float32', 11);
      const code = tf.mul(tf.cast(tf.oneHot(tf.tensor1d(colour, 'int32'), 8), 'float32'), 6); // query 0 encodes the colour
      const constant = tf.ones([n, 1, 8]); // query 1 is the same for every image
      return tf.concat([tf.add(tf.slice(noise, [0, 0, 0], [n, 1, 8]), tf.expandDims(code, 1)), constant, tf.slice(noise, [0, 1, 0], [n, 1, 8])], 1); // [n, 3, 8]
    });
    const probe = probeQueries(x, { labels: { colour }, steps: 100 });
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(probe.queryCosine.length).toBe(3);
    expect(probe.queryCosine.every((row) => row.length === 3)).toBe(true);
    expect(probe.queryCosine[1]![1]).toBeCloseTo(1, 5);
    expect(probe.acrossImages[1]).toBeCloseTo(1, 5); // ignores the image
    expect(probe.perQuery[0]!.colour).toBeGreaterThan(0.9);
    expect(probe.perQuery[2]!.colour).toBeLessThan(0.6);
    expect(probe.chance.colour).toBe(0.25);
    expect(() => probeQueries(tf.zeros([1, 2, 3]))).toThrow(/at least 2 images, got 1/);
    expect(() => probeQueries(tf.zeros([4, 2, 3]), { labels: { colour: [0, 1] } })).toThrow(/expected 4 labels \(one per image\), got 2/);
  });
});

describe('the apps\' shared presets', () => {
  test('smallFlamingoBridge: the small bridge, its perceiver depth, and errors for bad ids', () => {
    expect(smallFlamingoBridge({ tokenWidth: 192, mediaTokenId: 7, eocTokenId: 8 })).toEqual({
      perceiver: { dim: 192, depth: 1, dimHead: 32, heads: 4, numLatents: 16, ffMult: 1 },
      crossAttnEveryNLayers: 1,
      dimHead: 32,
      heads: 4,
      ffMult: 2,
      onlyAttendImmediateMedia: true,
      mediaTokenId: 7,
      eocTokenId: 8,
    });
    expect(smallFlamingoBridge({ tokenWidth: 192, mediaTokenId: 7, eocTokenId: 8, perceiverDepth: 2 }).perceiver.depth).toBe(2);
    const views = smallFlamingoBridge({ tokenWidth: 192, mediaTokenId: 7, eocTokenId: 8, framesPerImage: 2 });
    expect([views.framesPerImage, views.perceiver.maxNumFrames]).toEqual([2, 2]);
    expect(() => smallFlamingoBridge({ tokenWidth: 192, mediaTokenId: 7, eocTokenId: 8, framesPerImage: 0 })).toThrow(/framesPerImage to be a positive integer, got 0/);
    expect(() => smallFlamingoBridge({ tokenWidth: 192, mediaTokenId: -1, eocTokenId: 8 })).toThrow(/mediaTokenId to be a token id/);
    expect(() => smallFlamingoBridge({ tokenWidth: 0, mediaTokenId: 7, eocTokenId: 8 })).toThrow(/tokenWidth to be a positive integer, got 0/);
  });

  test('tokenizePromptTarget + paddedLmRows: prompt, target and <|endofchunk|> ids; right padding; labels only on the target', () => {
    // the world LM's real tokenizer (shipped in @vlm/shapeworld)
    const lmDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../shapeworld/lm');
    const tok = loadTokenizer(readFileSync(join(lmDir, 'tokenizer.json'), 'utf8'), { tokenizerConfig: readFileSync(join(lmDir, 'tokenizer_config.json'), 'utf8') });
    const caption = tokenizePromptTarget(tok, '<image> a', 'red square');
    const answer = tokenizePromptTarget(tok, '<image> question: what colour is the shape? answer:', 'red');
    expect(caption.ids.slice(0, caption.promptLength)).toEqual(tok.encode('<image> a'));
    expect(caption.ids.slice(caption.promptLength)).toEqual(tok.encode('red square <|endofchunk|>', { addSpecialTokens: false }));
    expect(caption.ids.at(-1)).toBe(tok.tokenToId('<|endofchunk|>'));
    const pad = tok.tokenToId('<pad>')!;
    const rows = paddedLmRows([caption, answer], pad);
    const width = Math.max(caption.ids.length, answer.ids.length);
    expect(rows.inputIds.map((r) => r.length)).toEqual([width, width]);
    const short = caption.ids.length < answer.ids.length ? 0 : 1;
    const ex = [caption, answer][short]!;
    expect(rows.inputIds[short]!.slice(ex.ids.length).every((v) => v === pad)).toBe(true);
    expect(rows.attentionMask[short]).toEqual([...ex.ids.map(() => 1), ...new Array(width - ex.ids.length).fill(0)]);
    expect(rows.labels[0]).toEqual(
      [...caption.ids.map((v, t) => (t < caption.promptLength ? IGNORE_INDEX : v)), ...new Array(width - caption.ids.length).fill(IGNORE_INDEX)],
    );
    expect(paddedLmRows([{ ids: [5, 6, 7], promptLength: 2 }, { ids: [5, 8], promptLength: 1 }], 0)).toEqual({
      inputIds: [[5, 6, 7], [5, 8, 0]],
      attentionMask: [[1, 1, 1], [1, 1, 0]],
      labels: [[-100, -100, 7], [-100, 8, -100]],
    });
    expect(() => paddedLmRows([], 0)).toThrow(/at least one example/);
    expect(() => paddedLmRows([{ ids: [1], promptLength: 2 }], 0)).toThrow(/example 0: expected promptLength in \[0, 1\]/);
  });
});
