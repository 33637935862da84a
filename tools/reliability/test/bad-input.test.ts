// The table-driven bad-input suite (issue 13): every public forward and loader of the @vlm
// packages, fed what a hostile or careless user would give it. Each case either returns a
// correct result (empty batches: an empty output, the same on every backend) or throws one
// `Error` (not a TypeError/RangeError from deep inside TF.js) whose message says what was
// expected and what came. Nothing may leak tensors. Run on cpu and wasm:
//   VLM_BACKEND=cpu  pnpm exec vitest run tools/reliability/test/bad-input.test.ts
//   VLM_BACKEND=wasm pnpm exec vitest run tools/reliability/test/bad-input.test.ts
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CrossAttention, Embedding, FeedForward, LayerNorm, Linear, MultiHeadAttention, generateGreedy, readSafetensors, writeSafetensors, type KVCache } from '@vlm/core';
import { FlamingoPerceiverResampler, PerceiverResampler, padVisionTokens } from '@vlm/perceiver';
import { FlamingoLM, GatedCrossAttention, GatedCrossAttentionBlock } from '@vlm/gated-xattn';
import { MlpProjector, QFormer } from '@vlm/qformer';
import {
  Blip2VisionModel,
  ClipVisionModel,
  OpenClipVisionTransformer,
  clipPreprocessing,
  createDecoderLM,
  generate,
  loadClipVisionModel,
  preprocessImages,
  loadDecoderLM,
  loadDecoderLMSync,
  loadTokenizer,
  parseBlip2VisionConfig,
  parseClipVisionConfig,
  parseOpenClipVisionConfig,
  type CausalLM,
  type LlamaForCausalLM,
} from '@vlm/frozen-loaders';
import { decodeImage } from '@vlm/frozen-loaders/node';

/** A case: `run` returns tensors (checked by `result`) or throws `error`. */
interface Case {
  name: string;
  run: () => unknown;
  /** The expected message (a substring or a pattern); it must also read "expected … got …" unless `plain`. */
  error?: string | RegExp;
  /** The expected result's shape (tensor) or a check of it. */
  result?: number[] | ((out: any) => void);
}

const D = 8;
const tensors: tf.Tensor[] = [];
/** A tensor kept for the whole suite (disposed at the end). */
const keep = <T extends tf.Tensor>(t: T) => (tensors.push(t), t);
const f32 = (shape: number[]) => keep(tf.randomNormal(shape, 0, 1, 'float32', 7));
const i32 = (shape: number[]) => keep(tf.zeros(shape, 'int32'));
const ids = (rows: number[][]) => keep(tf.tensor2d(rows, [rows.length, rows[0]?.length ?? 0], 'int32'));

function firstTensor(out: any): tf.Tensor | undefined {
  if (out instanceof tf.Tensor) return out;
  if (out && typeof out === 'object') for (const k of ['logits', 'sequences', 'lastHiddenState', 'queryOutput']) if (out[k] instanceof tf.Tensor) return out[k];
  return undefined;
}

function disposeAll(out: unknown) {
  if (out instanceof tf.Tensor) out.dispose();
  else if (out && typeof out === 'object') {
    for (const v of Object.values(out)) {
      if (v instanceof tf.Tensor) v.dispose();
      else if (Array.isArray(v)) v.forEach(disposeAll);
      else if (v && typeof v === 'object') disposeAll(v);
    }
  }
}

function runCases(cases: () => Case[]) {
  for (const c of cases()) {
    test(c.name, async () => {
      const before = tf.memory().numTensors;
      const kept = tensors.length; // inputs the case makes with keep() live until the end
      if (c.error !== undefined) {
        let thrown: unknown;
        let out: unknown;
        try {
          out = await c.run();
        } catch (e) {
          thrown = e;
        }
        disposeAll(out);
        expect(thrown, 'expected an error, got a result').toBeDefined();
        expect(thrown).toBeInstanceOf(Error);
        const e = thrown as Error;
        expect(e.constructor, `a plain Error, got ${e.name}: ${e.message}`).toBe(Error);
        if (typeof c.error === 'string') expect(e.message).toContain(c.error);
        else expect(e.message).toMatch(c.error);
        expect(e.message, 'the message names what was expected').toMatch(/expected|must|needs?\b|supported|not in/i);
        expect(e.message.length, 'a bounded message').toBeLessThan(10_000);
      } else {
        const out = await c.run();
        if (Array.isArray(c.result)) expect(firstTensor(out)?.shape).toEqual(c.result);
        else c.result?.(out);
        disposeAll(out);
      }
      expect(tf.memory().numTensors - (tensors.length - kept), 'no tensor leaks').toBe(before);
    });
  }
}

const lmConfigs = {
  gpt2: { model_type: 'gpt2', vocab_size: 20, n_positions: 16, n_embd: D, n_layer: 2, n_head: 2 },
  opt: { model_type: 'opt', vocab_size: 20, max_position_embeddings: 16, hidden_size: D, num_hidden_layers: 2, num_attention_heads: 2, ffn_dim: 16, word_embed_proj_dim: D },
  llama: { model_type: 'llama', vocab_size: 20, max_position_embeddings: 16, hidden_size: D, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 16 },
} as const;

const clipConfig = {
  model_type: 'clip_vision_model', hidden_act: 'quick_gelu', hidden_size: 16, image_size: 16, intermediate_size: 32,
  layer_norm_eps: 1e-5, num_attention_heads: 2, num_channels: 3, num_hidden_layers: 1, patch_size: 8,
};

let mha: MultiHeadAttention;
let xattn: CrossAttention;
let linear: Linear;
let norm: LayerNorm;
let resampler: PerceiverResampler;
let flamingoResampler: FlamingoPerceiverResampler;
let gated: GatedCrossAttention;
let block: GatedCrossAttentionBlock;
let qformer: QFormer;
let clip: ClipVisionModel;
let openClip: OpenClipVisionTransformer;
let blip2Vision: Blip2VisionModel;
let embedding: Embedding;
let feedForward: FeedForward;
let projector: MlpProjector;
const lms: Record<string, CausalLM> = {};
let flamingo: FlamingoLM;
let cache2: KVCache;

beforeAll(() => {
  mha = new MultiHeadAttention({ embedDim: D, numHeads: 2 });
  xattn = new CrossAttention({ dim: D, contextDim: D, heads: 2, dimHead: 4 });
  linear = new Linear({ inFeatures: D, outFeatures: 4 });
  norm = new LayerNorm({ dim: D });
  resampler = new PerceiverResampler({ dim: D, numQueries: 3, numLayers: 1, numHeads: 2 });
  flamingoResampler = new FlamingoPerceiverResampler({ dim: D, depth: 1, numLatents: 3, dimHead: 4, heads: 2 });
  gated = new GatedCrossAttention({ dim: D, numHeads: 2 });
  block = new GatedCrossAttentionBlock({ dim: D, dimVisual: D, dimHead: 4, heads: 2 });
  qformer = new QFormer({ hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, crossAttentionFrequency: 1, encoderHiddenSize: D, numQueryTokens: 4, vocabSize: 30, maxPositionEmbeddings: 16 });
  clip = new ClipVisionModel(parseClipVisionConfig(clipConfig));
  openClip = new OpenClipVisionTransformer(parseOpenClipVisionConfig({ vision_cfg: { image_size: 16, patch_size: 8, width: 16, layers: 1, head_width: 8 } }));
  blip2Vision = new Blip2VisionModel(parseBlip2VisionConfig({ model_type: 'blip_2_vision_model', hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 16, patch_size: 8 }));
  embedding = new Embedding({ numEmbeddings: 10, embeddingDim: D });
  feedForward = new FeedForward({ dim: D, mult: 2 });
  projector = new MlpProjector({ inFeatures: D, outFeatures: 4 } as never);
  for (const [name, cfg] of Object.entries(lmConfigs)) lms[name] = createDecoderLM(cfg);
  flamingo = new FlamingoLM({ lm: createDecoderLM(lmConfigs.gpt2), dimVisual: D, dimHead: 4, heads: 2, mediaTokenId: 5 });
  const out = lms.gpt2!.forward({ inputIds: ids([[1, 2, 3], [4, 5, 6]]), useCache: true });
  cache2 = out.pastKeyValues!;
  tf.dispose([out.logits, out.lastHiddenState, out.lastLayerOutput]);
});

afterAll(() => {
  for (const m of [mha, xattn, linear, norm, openClip, blip2Vision, embedding, feedForward, projector, resampler, flamingoResampler, gated, block, qformer, clip, flamingo, flamingo?.lm, ...Object.values(lms)]) m?.dispose();
  tf.dispose(cache2 as unknown as tf.TensorContainer);
  tf.dispose(tensors);
});

describe('empty batches: an empty result, the same on every backend', () => {
  runCases(() => [
    { name: 'MultiHeadAttention, 0 rows', run: () => mha.forward(f32([0, 3, D]), f32([0, 4, D]), f32([0, 4, D])), result: [0, 3, D] },
    { name: 'MultiHeadAttention, 0 keys', run: () => mha.forward(f32([2, 3, D]), f32([2, 0, D]), f32([2, 0, D])), result: [2, 3, D] },
    { name: 'CrossAttention, 0 rows', run: () => xattn.forward(f32([0, 3, D]), f32([0, 4, D])), result: [0, 3, D] },
    { name: 'PerceiverResampler, 0 rows', run: () => resampler.forward(f32([0, 5, D])), result: [0, 3, D] },
    { name: 'FlamingoPerceiverResampler, 0 rows', run: () => flamingoResampler.forward(f32([0, 1, 1, 5, D])), result: [0, 1, 3, D] },
    { name: 'FlamingoPerceiverResampler, T = 0 media', run: () => flamingoResampler.forward(f32([2, 0, 1, 5, D])), result: [2, 0, 3, D] },
    { name: 'GatedCrossAttention, 0 rows', run: () => gated.forward(f32([0, 3, D]), f32([0, 4, D])), result: [0, 3, D] },
    { name: 'GatedCrossAttentionBlock, 0 rows', run: () => block.forward(f32([0, 3, D]), f32([0, 1, 4, D]), i32([0, 3])), result: [0, 3, D] },
    { name: 'GatedCrossAttentionBlock, T = 0 media', run: () => block.forward(f32([1, 3, D]), f32([1, 0, 4, D]), i32([1, 3])), result: [1, 3, D] },
    { name: 'FlamingoLM, 0 rows', run: () => flamingo.forward({ inputIds: i32([0, 3]), media: f32([0, 1, 4, D]) }), result: [0, 3, 20] },
    { name: 'FlamingoLM, T = 0 media', run: () => flamingo.forward({ inputIds: ids([[1, 2, 3]]), media: f32([1, 0, 4, D]) }), result: [1, 3, 20] },
    ...Object.keys(lmConfigs).flatMap((name): Case[] => [
      { name: `${name} forward, 0 rows`, run: () => lms[name]!.forward({ inputIds: i32([0, 3]) }), result: [0, 3, 20] },
      { name: `${name} forward, 0 tokens`, run: () => lms[name]!.forward({ inputIds: i32([2, 0]) }), result: [2, 0, 20] },
    ]),
    { name: 'QFormer, 0 rows', run: () => qformer.encode({ imageEmbeds: f32([0, 5, D]) }), result: (o) => expect(o.queryOutput.shape).toEqual([0, 4, 16]) },
    { name: 'ClipVisionModel, 0 images', run: () => clip.encode(f32([0, 3, 16, 16])), result: [0, 4, 16] },
    { name: 'OpenClipVisionTransformer, 0 images', run: () => openClip.encode(f32([0, 3, 16, 16])), result: (o: tf.Tensor) => expect(o.shape[0]).toBe(0) },
    { name: 'Blip2VisionModel, 0 images', run: () => blip2Vision.encode(f32([0, 3, 16, 16])), result: (o: tf.Tensor) => expect(o.shape[0]).toBe(0) },
    { name: 'QFormer text mode, 0 rows', run: () => new QFormerProbe().text(i32([0, 3])), result: (o) => expect(o.lastHiddenState.shape).toEqual([0, 3, 16]) },
    { name: 'Embedding, 0 rows', run: () => embedding.forward(i32([0, 3])), result: [0, 3, D] },
    { name: 'MlpProjector, 0 rows', run: () => projector.forward(f32([0, 4, D])), result: [0, 4, 4] },
  ]);
});

describe('shapes and dtypes at the public entry points', () => {
  runCases(() => [
    { name: 'MultiHeadAttention, int32 query', run: () => mha.forward(i32([1, 3, D]), f32([1, 4, D]), f32([1, 4, D])), error: 'MultiHeadAttention query: expected dtype float32, got int32' },
    { name: 'MultiHeadAttention, bool key', run: () => mha.forward(f32([1, 3, D]), keep(tf.zeros([1, 4, D], 'bool')), f32([1, 4, D])), error: 'MultiHeadAttention key: expected dtype float32, got bool' },
    { name: 'MultiHeadAttention, rank-2 query', run: () => mha.forward(f32([3, D]), f32([1, 4, D]), f32([1, 4, D])), error: 'MultiHeadAttention query: expected shape [batch, queries, embedDim=8], got [3, 8]' },
    { name: 'MultiHeadAttention, key of another batch', run: () => mha.forward(f32([2, 3, D]), f32([1, 4, D]), f32([1, 4, D])), error: 'MultiHeadAttention key: expected shape [batch=2, keys, kdim=8], got [1, 4, 8]' },
    { name: 'MultiHeadAttention, null query', run: () => mha.forward(null as never, f32([1, 4, D]), f32([1, 4, D])), error: 'MultiHeadAttention query: expected a tf.Tensor of shape [batch, queries, embedDim=8], got null' },
    { name: 'MultiHeadAttention, disposed query', run: () => { const x = tf.zeros([1, 3, D]); x.dispose(); return mha.forward(x, f32([1, 4, D]), f32([1, 4, D])); }, error: 'expected a live tf.Tensor' },
    { name: 'CrossAttention, int32 context', run: () => xattn.forward(f32([1, 3, D]), i32([1, 4, D])), error: 'CrossAttention context: expected dtype float32, got int32' },
    { name: 'PerceiverResampler, int32 features', run: () => resampler.forward(i32([1, 5, D])), error: 'PerceiverResampler visionFeatures: expected dtype float32, got int32' },
    { name: 'PerceiverResampler, bool features', run: () => resampler.forward(keep(tf.zeros([1, 5, D], 'bool'))), error: 'expected dtype float32, got bool' },
    { name: 'PerceiverResampler, wrong width', run: () => resampler.forward(f32([1, 5, D + 1])), error: 'PerceiverResampler visionFeatures: expected shape [batch, tokens, dim=8], got [1, 5, 9]' },
    { name: 'PerceiverResampler, mask of another length', run: () => resampler.forward(f32([1, 5, D]), i32([1, 4])), error: 'PerceiverResampler keyPaddingMask: expected shape [batch=1, tokens=5], got [1, 4]' },
    { name: 'FlamingoPerceiverResampler, int32 input', run: () => flamingoResampler.forward(i32([1, 1, 1, 5, D])), error: 'FlamingoPerceiverResampler input: expected dtype float32, got int32' },
    { name: 'FlamingoPerceiverResampler, rank-2 input', run: () => flamingoResampler.forward(f32([5, D])), error: /expected .*got \[5, 8\]/ },
    { name: 'GatedCrossAttention, int32 text', run: () => gated.forward(i32([1, 3, D]), f32([1, 4, D])), error: 'GatedCrossAttention textHidden: expected dtype float32, got int32' },
    { name: 'GatedCrossAttention, visual tokens of another batch', run: () => gated.forward(f32([2, 3, D]), f32([1, 4, D])), error: 'GatedCrossAttention visualTokens: expected shape [batch=2, visualTokens, dim=8], got [1, 4, 8]' },
    { name: 'GatedCrossAttentionBlock, int32 media', run: () => block.forward(f32([1, 3, D]), i32([1, 1, 4, D])), error: 'GatedCrossAttentionBlock media: expected dtype float32, got int32' },
    { name: 'GatedCrossAttentionBlock, rank-3 media', run: () => block.forward(f32([1, 3, D]), f32([1, 4, D])), error: 'GatedCrossAttentionBlock media: expected shape [batch=1, T, m, dimVisual=8], got [1, 4, 8]' },
    { name: 'FlamingoLM, rank-2 inputsEmbeds', run: () => flamingo.forward({ inputsEmbeds: f32([3, D]), media: f32([1, 1, 4, D]), mediaLocations: i32([1, 3]) }), error: 'FlamingoLM.forward inputsEmbeds: expected shape [batch, queries, embedDim=8], got [3, 8]' },
    { name: 'FlamingoLM, int32 inputsEmbeds', run: () => flamingo.forward({ inputsEmbeds: i32([1, 3, D]), media: f32([1, 1, 4, D]), mediaLocations: i32([1, 3]) }), error: 'FlamingoLM.forward inputsEmbeds: expected dtype float32, got int32' },
    { name: 'FlamingoLM, int32 media', run: () => flamingo.forward({ inputIds: ids([[5, 1, 2]]), media: i32([1, 1, 4, D]) }), error: 'FlamingoLM media: expected dtype float32, got int32' },
    { name: 'FlamingoLM, media of another batch', run: () => flamingo.forward({ inputIds: ids([[5, 1, 2]]), media: f32([2, 1, 4, D]) }), error: 'FlamingoLM media: expected shape [batch=1, T, m, dimVisual=8], got [2, 1, 4, 8]' },
    { name: 'FlamingoLM, no media', run: () => flamingo.forward({ inputIds: ids([[5, 1, 2]]) }), error: 'FlamingoLM.forward: expected media' },
    { name: 'FlamingoLM, inputsEmbeds without mediaLocations', run: () => flamingo.forward({ inputsEmbeds: f32([1, 3, D]), media: f32([1, 1, 4, D]) }), error: 'FlamingoLM.forward: expected mediaLocations [batch, queries], or inputIds with a mediaTokenId set' },
    ...Object.keys(lmConfigs).flatMap((name): Case[] => [
      { name: `${name}, int32 inputsEmbeds`, run: () => lms[name]!.forward({ inputsEmbeds: i32([1, 3, D]) }), error: /inputsEmbeds: expected dtype float32, got int32/ },
      { name: `${name}, rank-3 inputIds`, run: () => lms[name]!.forward({ inputIds: i32([1, 3, 1]) }), error: /inputIds: expected shape \[batch, queries\], got \[1, 3, 1\]/ },
      { name: `${name}, both inputIds and inputsEmbeds`, run: () => lms[name]!.forward({ inputIds: i32([1, 3]), inputsEmbeds: f32([1, 3, D]) }), error: /expected exactly one of inputIds .* got both/ },
      { name: `${name}, attentionMask of another length`, run: () => lms[name]!.forward({ inputIds: i32([1, 3]), attentionMask: i32([1, 4]) }), error: 'attentionMask: expected shape [batch=1, pastLength+queries=3], got [1, 4]' },
    ]),
    { name: 'QFormer, int32 imageEmbeds', run: () => qformer.encode({ imageEmbeds: i32([1, 5, D]) }), error: 'QFormer imageEmbeds: expected dtype float32, got int32' },
    { name: 'ClipVisionModel, int32 pixels', run: () => clip.encode(i32([1, 3, 16, 16])), error: 'pixel_values (NCHW): expected dtype float32, got int32' },
    { name: 'ClipVisionModel, NHWC pixels', run: () => clip.encode(f32([1, 16, 16, 3])), error: /expected .*got/ },
    { name: 'OpenClipVisionTransformer, int32 pixels', run: () => openClip.encode(i32([1, 3, 16, 16])), error: 'pixel_values (NCHW): expected dtype float32, got int32' },
    { name: 'Blip2VisionModel, wrong image size', run: () => blip2Vision.encode(f32([1, 3, 24, 24])), error: /expected 16×16 images .*got 24×24/ },
    { name: 'QFormer itm without inputIds', run: () => qformer.encode({ imageEmbeds: f32([1, 5, D]), mode: 'itm' }), error: "QFormer: mode 'itm' needs inputIds" },
    { name: 'QFormer, int32 imageEmbeds of another width', run: () => qformer.encode({ imageEmbeds: i32([1, 5, D + 1]) }), error: 'QFormer imageEmbeds: expected shape [batch, tokens, encoderHiddenSize=8], got [1, 5, 9]' },
    { name: 'MlpProjector, int32 input', run: () => projector.forward(i32([1, 4, D])), error: /expected dtype float32, got int32/ },
    { name: 'MlpProjector, wrong width', run: () => projector.forward(f32([1, 4, D + 1])), error: /expected .*got/ },
    { name: 'Embedding, id out of range', run: () => embedding.forward(ids([[1, 10]])), error: /ids must be in \[0, 10\), got values in \[1, 10\]/ },
    { name: 'Embedding, float ids', run: () => embedding.forward(f32([1, 3])), error: /expected dtype int32/ },
    { name: 'FeedForward, int32 input', run: () => feedForward.forward(i32([1, 3, D])), error: /expected dtype float32, got int32/ },
    { name: 'Linear, int32 input', run: () => linear.forward(i32([2, D])), error: /expected dtype float32, got int32/ },
    { name: 'LayerNorm, bool input', run: () => norm.forward(keep(tf.zeros([2, D], 'bool'))), error: 'LayerNorm input: expected dtype float32, got bool' },
    { name: 'Linear, undefined input', run: () => linear.forward(undefined as never), error: 'Linear input: expected a tf.Tensor of shape [8], got a value of type undefined' },
    { name: 'Linear, wrong width', run: () => linear.forward(f32([2, D + 1])), error: /expected .*got/ },
    { name: 'LayerNorm, wrong width', run: () => norm.forward(f32([2, D + 1])), error: /expected .*got/ },
  ]);
});

describe('generation edge cases', () => {
  runCases(() => [
    { name: 'generate, empty prompt', run: () => generate(lms.gpt2!, { inputIds: [[]], maxNewTokens: 2 }), error: 'generate: expected a prompt of at least 1 token per row' },
    { name: 'generate, empty prompt with returnStepLogits', run: () => generate(lms.gpt2!, { inputIds: [[]], maxNewTokens: 2, returnStepLogits: true }), error: 'generate: expected a prompt of at least 1 token per row' },
    { name: 'generate, inputIds: []', run: () => generate(lms.gpt2!, { inputIds: [], maxNewTokens: 2 }), error: 'generate: expected inputIds [batch >= 1, tokens], got an empty batch' },
    { name: 'generate, empty inputIds tensor', run: () => generate(lms.llama!, { inputIds: i32([1, 0]), maxNewTokens: 2 }), error: 'got [1, 0]' },
    { name: 'generate, empty inputsEmbeds', run: () => generate(lms.opt!, { inputsEmbeds: f32([1, 0, D]), maxNewTokens: 2 }), error: 'got [1, 0]' },
    { name: 'generate, a row of padding only', run: () => generate(lms.gpt2!, { inputIds: [[1, 2], [0, 0]], attentionMask: [[1, 1], [0, 0]], maxNewTokens: 2 }), error: 'got only padding in row 1' },
    { name: 'generate, an id outside the vocabulary', run: () => generate(lms.gpt2!, { inputIds: [[1, 99]], maxNewTokens: 2 }), error: 'expected token ids that are integers in [0, 20), got 99 at inputIds[0][1]' },
    { name: 'generate, up to the position table', run: () => generate(lms.gpt2!, { inputIds: [[1, 2, 3]], maxNewTokens: 14 }), result: (o) => expect(o.newTokens[0]).toHaveLength(14) },
    { name: 'generate, past the position table (step logits freed)', run: () => generate(lms.gpt2!, { inputIds: [[1, 2, 3]], maxNewTokens: 15, returnStepLogits: true }), error: 'generate: expected at most 16 positions (the LM\'s maxPositions) to predict from, got 3 prompt + 14 new = 17 for new token 15 of maxNewTokens 15' },
    { name: 'generate, past the position table without cache', run: () => generate(lms.opt!, { inputIds: [[1, 2, 3]], maxNewTokens: 20, useCache: false }), error: 'got 3 prompt + 14 new = 17' },
    { name: 'generate, a prompt longer than the position table', run: () => generate(lms.llama!, { inputIds: [Array<number>(17).fill(1)], maxNewTokens: 1 }), error: 'generate: expected a prompt of at most 16 positions' },
    { name: 'generate, negative maxNewTokens', run: () => generate(lms.gpt2!, { inputIds: [[1]], maxNewTokens: -1 }), error: 'maxNewTokens must be a non-negative integer, got -1' },
    { name: 'generate, ragged rows', run: () => generate(lms.gpt2!, { inputIds: [[1, 2], [3]], maxNewTokens: 1 }), error: 'generate: expected inputIds [batch, tokens]' },
    { name: 'generate, valid (3 new tokens, step logits)', run: () => generate(lms.llama!, { inputIds: [[1, 2]], maxNewTokens: 3, returnStepLogits: true, seed: 1 }), result: (o) => (expect(o.newTokens[0]).toHaveLength(3), expect(o.stepLogits.shape).toEqual([1, 3, 20])) },
    { name: 'generateGreedy, empty prompt', run: () => generateGreedy((a) => lms.gpt2!.forward(a), { inputIds: i32([1, 0]), maxNewTokens: 2 }), error: 'generateGreedy inputIds: expected a prompt of batch >= 1 and promptLength >= 1' },
    { name: 'generateGreedy, 0 rows', run: () => generateGreedy((a) => lms.gpt2!.forward(a), { inputIds: i32([0, 3]), maxNewTokens: 2 }), error: 'got [0, 3]' },
    { name: 'generateGreedy, fractional maxNewTokens', run: () => generateGreedy((a) => lms.gpt2!.forward(a), { inputIds: ids([[1]]), maxNewTokens: 1.5 }), error: 'expected maxNewTokens to be an integer >= 0, got 1.5' },
    { name: 'FlamingoLM.generate, empty prompt', run: () => flamingo.generate({ inputIds: i32([1, 0]), media: f32([1, 1, 4, D]), maxNewTokens: 2 }), error: 'expected a prompt of batch >= 1 and promptLength >= 1' },
    { name: 'KV cache of another batch size', run: () => lms.gpt2!.forward({ inputIds: ids([[7]]), pastKeyValues: cache2 }), error: 'GPT2LMHeadModel.forward pastKeyValues layer 0 key: expected shape [batch=1, pastLength=3, …]' },
    { name: 'KV cache with a wrong length', run: () => lms.gpt2!.forward({ inputIds: ids([[7], [8]]), pastKeyValues: { ...cache2, length: 5 } }), error: 'pastKeyValues layer 0 key: expected shape [batch=2, pastLength=5, …] (a cache of this batch, as long as its length), got [2, 3, 8]' },
    { name: 'KV cache of another LM (layer count)', run: () => lms.gpt2!.forward({ inputIds: ids([[7], [8]]), pastKeyValues: { layers: cache2.layers.slice(0, 1), length: 3 } }), error: 'pastKeyValues: expected 2 layer entries, got 1' },
    { name: 'KV cache through FlamingoLM, another batch size', run: () => flamingo.forward({ inputIds: ids([[7]]), media: f32([1, 1, 4, D]), pastKeyValues: { ...cache2, media: f32([1, 1, 4, D]), mediaTime: i32([1]) } }), error: 'FlamingoLM.forward pastKeyValues layer 0 key: expected shape [batch=1, pastLength=3, …]' },
    { name: 'LLaMA beyond max_position_embeddings', run: () => lms.llama!.forward({ inputIds: i32([1, 17]) }), error: 'LlamaForCausalLM.forward: expected at most 16 positions (the LM\'s maxPositions), got 17 (0 cached + 17 new)' },
    { name: 'LLaMA beyond max_position_embeddings when told to allow it', run: () => { const lm = lms.llama as LlamaForCausalLM; lm.allowLongerSequences = true; try { return lm.forward({ inputIds: i32([1, 17]) }); } finally { lm.allowLongerSequences = false; } }, result: [1, 17, 20] },
    { name: 'GPT-2 beyond n_positions', run: () => lms.gpt2!.forward({ inputIds: i32([1, 17]) }), error: 'expected at most 16 positions' },
    { name: 'OPT beyond max_position_embeddings (with a cache)', run: () => lms.opt!.forward({ inputIds: i32([2, 14]), pastKeyValues: lmCache(lms.opt!, 2, 3) }), error: 'got 17 (3 cached + 14 new)' },
  ]);
});

/** A three-token word-level tokenizer.json. */
function tinyTokenizer() {
  return loadTokenizer({
    version: '1.0', added_tokens: [], normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
    model: { type: 'WordLevel', vocab: { '[UNK]': 0, hello: 1, world: 2 }, unk_token: '[UNK]' },
  });
}

/** The Q-Former's text mode needs the text branch: a second, tiny Q-Former built on demand. */
class QFormerProbe {
  text(inputIds: tf.Tensor) {
    const q = new QFormer({ hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, crossAttentionFrequency: 1, encoderHiddenSize: D, numQueryTokens: 4, vocabSize: 30, maxPositionEmbeddings: 16, useTextInput: true } as never);
    try {
      return q.encode({ inputIds, mode: 'text' });
    } finally {
      q.dispose();
    }
  }
}

/** A real cache of `length` positions for `batch` rows (disposed with the suite). */
function lmCache(lm: CausalLM, batch: number, length: number): KVCache {
  const out = lm.forward({ inputIds: i32([batch, length]), useCache: true });
  tf.dispose([out.logits, out.lastHiddenState, out.lastLayerOutput]);
  for (const l of out.pastKeyValues!.layers) keep(l.key), keep(l.value);
  return out.pastKeyValues!;
}

describe('loaders', () => {
  const config = JSON.stringify(lmConfigs.gpt2);
  let weights: Uint8Array;
  beforeAll(() => {
    const lm = createDecoderLM(lmConfigs.gpt2);
    const sd = lm.stateDict();
    weights = writeSafetensors(sd);
    tf.dispose(Object.values(sd));
    lm.dispose();
  });
  runCases(() => [
    { name: 'loadDecoderLM, weights: null', run: () => loadDecoderLM({ config, weights: null as never }), error: 'loadDecoderLM: expected weights as model.safetensors bytes (Uint8Array or ArrayBuffer), a list of shards, shards by file name or { index, shards }, got null' },
    { name: 'loadDecoderLM, weights: a string', run: () => loadDecoderLMSync({ config, weights: 'model.safetensors' as never }), error: 'got a value of type string' },
    { name: 'loadDecoderLM, no arguments', run: () => loadDecoderLMSync(undefined as never), error: 'loadDecoderLM: expected { config, weights, index? }, got undefined' },
    { name: 'loadDecoderLM, weight_map is a string', run: () => loadDecoderLMSync({ config, weights: { 'model.safetensors': weights }, index: { weight_map: 'model.safetensors' } }), error: "field 'weight_map' must be an object of tensor name → shard file name" },
    { name: 'loadDecoderLM, weight_map is null', run: () => loadDecoderLMSync({ config, weights: [weights], index: { weight_map: null } }), error: "field 'weight_map' must be an object" },
    { name: 'loadDecoderLM, weight_map is empty', run: () => loadDecoderLMSync({ config, weights: { 'model.safetensors': weights }, index: { weight_map: {} } }), error: /is not in the index's weight_map/ },
    { name: 'loadDecoderLM, weight_map in { index, shards }', run: () => loadDecoderLMSync({ config, weights: { index: { weight_map: [] }, shards: { 'model.safetensors': weights } } }), error: "field 'weight_map' must be an object" },
    { name: 'loadDecoderLM, truncated weights', run: () => loadDecoderLMSync({ config, weights: weights.slice(0, weights.length - 10) }), error: /model\.safetensors/ },
    { name: 'loadDecoderLM, config of another model type', run: () => loadDecoderLMSync({ config: JSON.stringify({ ...lmConfigs.gpt2, model_type: 'bert' }), weights }), error: /model_type/ },
    { name: 'loadDecoderLM, a valid checkpoint', run: () => loadDecoderLMSync({ config, weights }), result: (lm: CausalLM) => (expect(lm.info.numLayers).toBe(2), lm.dispose()) },
    { name: 'readSafetensors, 3 bytes', run: () => readSafetensors(new Uint8Array(3), { source: 'x.safetensors' }), error: /x\.safetensors/ },
    { name: 'loadStateDict, a disposed tensor', run: () => { const sd = linear.stateDict(); sd['weight']!.dispose(); try { return linear.loadStateDict(sd); } finally { tf.dispose(Object.values(sd)); } }, error: 'weight: expected a live tf.Tensor, got a disposed tensor of shape [4, 8]' },
    { name: 'loadStateDict, a tensor-like object', run: () => { const sd = linear.stateDict(); try { return linear.loadStateDict({ ...sd, bias: { shape: [4], dtype: 'float32' } as never }); } finally { tf.dispose(Object.values(sd)); } }, error: 'bias: expected a live tf.Tensor, got an object that is not a tf.Tensor' },
    { name: 'decodeImage, bytes that are no image', run: () => decodeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), error: 'decodeImage: expected a PNG or JPEG file, got one that is not (first bytes: 01 02 03 04' },
    { name: 'decodeImage, a truncated PNG header', run: () => decodeImage(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0])), error: 'decodeImage: expected a valid PNG image, got one that could not be decoded' },
    { name: 'preprocessImages, no images', run: () => preprocessImages([], clipPreprocessing(16)), error: 'preprocessImages: expected at least one image, got none' },
    { name: 'preprocessImages, an image of the wrong rank', run: () => preprocessImages([f32([4, 4]) as never], clipPreprocessing(16)), error: /expected .*got/ },
    { name: 'padVisionTokens, no images', run: () => padVisionTokens([]), error: 'padVisionTokens: expected at least one image, got none' },
    { name: 'padVisionTokens, images of different widths', run: () => padVisionTokens([f32([3, D]), f32([2, D + 1])]), error: /expected .*got/ },
    { name: 'loadClipVisionModel, weights: null', run: () => loadClipVisionModel({ config: clipConfig, weights: null as never }), error: /expected|weights/ },
    { name: 'loadClipVisionModel, a GPT-2 checkpoint', run: () => loadClipVisionModel({ config: clipConfig, weights }), error: "loadClipVisionModel: expected a CLIP vision checkpoint ('vision_model.*' keys" },
    { name: 'loadTokenizer, null', run: () => loadTokenizer(null), error: /expected|must/ },
    { name: 'loadTokenizer, text that is not JSON', run: () => loadTokenizer('{ not json'), error: /expected|must|JSON/ },
    { name: 'tokenizer decode, an id outside the vocabulary', run: () => tinyTokenizer().decode([0, 99]), error: 'decode: expected token ids that are integers in [0, 3) with a token in the vocabulary, got 99 at index 1' },
    { name: 'tokenizer decode, []', run: () => tinyTokenizer().decode([]), result: (text: string) => expect(text).toBe('') },
    { name: 'tokenizer encode, a number', run: () => tinyTokenizer().encode(42 as never), error: 'encode: expected a string, got 42' },
    { name: 'loadTokenizer, no model', run: () => loadTokenizer({ version: '1.0' }), error: "tokenizer.json: field 'model' must be an object" },
  ]);
});
