// The soak (issue 13): 2,000 training steps of a small Flamingo bridge (Perceiver Resampler +
// gated cross-attention block) with Adam, and 1,000 generations (sampled GPT-2 and LLaMA with a
// KV cache, greedy FlamingoLM), checking every 100 steps that the live tensor
// count, the bytes they hold and (on wasm) the wasm heap stay exactly where they were after the
// first 100 (warm-up: Adam's slots, kernel caches, the heap's first growth). The models are
// small so that the full size runs in well under a minute:
//   VLM_BACKEND=wasm pnpm exec vitest run tools/reliability/test/soak.test.ts
// SOAK_STEPS and SOAK_GENERATIONS override the sizes (multiples of 100), e.g. a longer soak:
//   SOAK_STEPS=20000 SOAK_GENERATIONS=10000 VLM_BACKEND=wasm pnpm exec vitest run tools/reliability/test/soak.test.ts
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { manualSeed, trainableVariables } from '@vlm/core';
import { FlamingoPerceiverResampler } from '@vlm/perceiver';
import { FlamingoLM, GatedCrossAttentionBlock } from '@vlm/gated-xattn';
import { createDecoderLM, generate, type CausalLM } from '@vlm/frozen-loaders';

const STEPS = Number(process.env.SOAK_STEPS ?? 2000);
const GENERATIONS = Number(process.env.SOAK_GENERATIONS ?? 1000);
const EVERY = 100;
const D = 8;
const VOCAB = 24;
const MEDIA = 3; // <image> token id

interface Memory {
  numTensors: number;
  numBytes: number;
  wasmHeapBytes: number | null;
}
function memory(): Memory {
  const { numTensors, numBytes } = tf.memory();
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return { numTensors, numBytes, wasmHeapBytes: heap ? heap.length : null };
}

/** Runs `n` iterations of `body`; records memory every EVERY; expects every record after the first equal to it. */
function soak(what: string, n: number, body: (i: number) => void): Memory[] {
  const records: Memory[] = [];
  const [wall, cpu] = [performance.now(), process.cpuUsage()];
  for (let i = 1; i <= n; i++) {
    body(i);
    if (i % EVERY === 0) records.push(memory());
  }
  const used = process.cpuUsage(cpu);
  console.log(`soak ${tf.getBackend()}: ${n} ${what} in ${((performance.now() - wall) / 1000).toFixed(1)} s wall, ${((used.user + used.system) / 1e6).toFixed(1)} s CPU; memory ${JSON.stringify(records[0])}`);
  return records;
}

let resampler: FlamingoPerceiverResampler;
let block: GatedCrossAttentionBlock;
let flamingo: FlamingoLM;
let llama: CausalLM;

beforeAll(() => {
  manualSeed(13);
  resampler = new FlamingoPerceiverResampler({ dim: D, depth: 1, numLatents: 2, dimHead: 4, heads: 2, ffMult: 2 });
  block = new GatedCrossAttentionBlock({ dim: D, dimVisual: D, dimHead: 4, heads: 2, ffMult: 2 });
  const gpt2 = createDecoderLM({ model_type: 'gpt2', vocab_size: VOCAB, n_positions: 32, n_embd: D, n_layer: 1, n_head: 2 });
  flamingo = new FlamingoLM({ lm: gpt2, dimVisual: D, dimHead: 4, heads: 2, ffMult: 2, mediaTokenId: MEDIA });
  llama = createDecoderLM({ model_type: 'llama', vocab_size: VOCAB, max_position_embeddings: 32, hidden_size: D, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 16 });
  manualSeed(null);
});

afterAll(() => {
  resampler?.dispose();
  block?.dispose();
  flamingo?.dispose();
  flamingo?.lm.dispose();
  llama?.dispose();
});

test(`${STEPS} training steps: tensors, bytes and wasm heap constant (checked every ${EVERY})`, () => {
  const B = 2;
  const vision = tf.randomNormal([B, 1, 1, 3, D], 0, 1, 'float32', 1); // [b, T, F, v, d]
  const text = tf.randomNormal([B, 4, D], 0, 1, 'float32', 3);
  const target = tf.randomNormal([B, 4, D], 0, 1, 'float32', 4);
  const locations = tf.tensor2d([[1, 0, 0, 0], [1, 0, 0, 0]], [B, 4], 'int32');
  const variables = trainableVariables(resampler, block);
  const optimizer = tf.train.adam(1e-2);
  const lossAt: number[] = [];
  const records = soak('training steps', STEPS, (i) => {
    const loss = optimizer.minimize(() => {
      const media = resampler.forward(vision); // [b, 1, latents, d]
      return tf.losses.meanSquaredError(target, block.forward(text, media, locations)) as tf.Scalar;
    }, i === 1 || i === STEPS, variables);
    if (loss) {
      lossAt.push(loss.dataSync()[0]!);
      loss.dispose();
    }
  });
  expect(records).toHaveLength(STEPS / EVERY);
  for (const r of records) expect(r).toEqual(records[0]);
  expect(lossAt[1]!).toBeLessThan(lossAt[0]!); // it trained
  tf.dispose([vision, text, target, locations]);
  optimizer.dispose();
}, 600_000);

test(`${GENERATIONS} generations: tensors, bytes and wasm heap constant (checked every ${EVERY})`, () => {
  const media = tf.tidy(() => resampler.forward(tf.randomNormal([2, 1, 1, 5, D], 0, 1, 'float32', 2)));
  const prompt = tf.tensor2d([[0, MEDIA, 4, 5], [MEDIA, 9, 10, 11]], [2, 4], 'int32');
  const promptMask = tf.tensor2d([[0, 1, 1, 1], [1, 1, 1, 1]], [2, 4], 'int32');
  let tokens = 0;
  const records = soak('generations', GENERATIONS, (i) => {
    if (i % 3 === 0) {
      const { sequences, stepLogits } = flamingo.generate({ inputIds: prompt, attentionMask: promptMask, media, maxNewTokens: 2 });
      tokens += sequences.shape[1]! - 4;
      tf.dispose([sequences, stepLogits]);
    } else {
      const lm = i % 3 === 1 ? (flamingo.lm as CausalLM) : llama;
      const out = generate(lm, { inputIds: [[1, 2, 3], [0, 4, 5]], attentionMask: [[1, 1, 1], [0, 1, 1]], maxNewTokens: 2, seed: i, doSample: true, temperature: 0.8, returnStepLogits: i % 2 === 0 });
      out.stepLogits?.dispose();
      tokens += out.newTokens[0]!.length;
    }
  });
  expect(records).toHaveLength(GENERATIONS / EVERY);
  for (const r of records) expect(r).toEqual(records[0]);
  expect(tokens).toBeGreaterThanOrEqual(GENERATIONS);
  tf.dispose([media, prompt, promptMask]);
}, 600_000);
