import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { causalLmLoss, manualSeed } from '@vlm/core';
import { createDecoderLM } from '../src/lm/index';
import { PatchEmbedding } from '../src/vision/index';

const std = (v: tf.Tensor) => tf.tidy(() => Math.sqrt(tf.moments(v).variance.dataSync()[0]!));

describe('createDecoderLM initialises as GPT-2 does', () => {
  test.each([
    ['gpt2', { model_type: 'gpt2', vocab_size: 97, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 }],
    ['opt', { model_type: 'opt', vocab_size: 97, max_position_embeddings: 32, hidden_size: 32, ffn_dim: 64, num_hidden_layers: 2, num_attention_heads: 4, word_embed_proj_dim: 32 }],
    ['llama', { model_type: 'llama', vocab_size: 97, max_position_embeddings: 32, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4 }],
  ])('%s: N(0, 0.02) tables, zero biases, unit norms; a fresh LM predicts near uniform (loss ≈ log V); trainable', (_, config) => {
    manualSeed(3);
    const lm = createDecoderLM(config);
    const before = tf.memory().numTensors;
    try {
      for (const [name, v] of lm.namedParameters()) {
        if (/norm|ln_/.test(name)) {
          const value = name.endsWith('weight') ? 1 : 0;
          expect(tf.tidy(() => tf.max(tf.abs(tf.sub(v, value))).dataSync()[0]), name).toBe(0);
        } else if (name.endsWith('.bias')) expect(tf.tidy(() => tf.max(tf.abs(v)).dataSync()[0]), name).toBe(0);
        else if (!name.endsWith('c_proj.weight')) expect(std(v), name).toBeGreaterThan(0.015), expect(std(v), name).toBeLessThan(0.025);
        expect(v.trainable, name).toBe(true);
      }
      const ids = tf.tensor2d([[5, 9, 11, 40, 2, 7]], undefined, 'int32');
      const loss = tf.tidy(() => causalLmLoss(lm.forward({ inputIds: ids }).logits, ids).dataSync()[0]!);
      ids.dispose();
      expect(Math.abs(loss - Math.log(97))).toBeLessThan(0.1);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      lm.dispose();
      manualSeed(null);
    }
  });

  test('initializerRange from the options, then the config; a bad one is an Error', () => {
    const config = { model_type: 'gpt2', vocab_size: 50, n_positions: 8, n_embd: 16, n_layer: 1, n_head: 2, initializer_range: 0.2 };
    const a = createDecoderLM(config);
    const b = createDecoderLM(config, { initializerRange: 0.002 });
    const wte = (lm: typeof a) => lm.namedParameters().find(([n]) => n.endsWith('wte.weight'))![1];
    expect(std(wte(a))).toBeGreaterThan(0.15);
    expect(std(wte(b))).toBeLessThan(0.003);
    a.dispose();
    b.dispose();
    expect(() => createDecoderLM(config, { initializerRange: -1 })).toThrow(/initializerRange must be a non-negative number, got -1/);
  });
});

describe('manualSeed makes built backbones repeat exactly', () => {
  const weights = (m: { stateDict(): Record<string, tf.Tensor> }) => {
    const dict = m.stateDict();
    const out = Object.fromEntries(Object.entries(dict).map(([k, v]) => [k, Array.from(v.dataSync())]));
    Object.values(dict).forEach((v) => v.dispose());
    return out;
  };
  test('GPT-2 (Conv1D) and a patch embedding: same seed, same weights; another seed, other weights', () => {
    const build = (seed: number) => {
      manualSeed(seed);
      const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: 31, n_positions: 8, n_embd: 16, n_layer: 1, n_head: 2 });
      const pe = new PatchEmbedding({ inChannels: 3, embedDim: 8, patchSize: 4, bias: true });
      const w = { ...weights(lm), ...Object.fromEntries(Object.entries(weights(pe)).map(([k, v]) => [`pe.${k}`, v])) };
      lm.dispose();
      pe.dispose();
      return w;
    };
    const before = tf.memory().numTensors;
    const a = build(7), b = build(7), c = build(8);
    expect(b).toEqual(a);
    expect(c['pe.weight']).not.toEqual(a['pe.weight']);
    expect(c['transformer.h.0.attn.c_attn.weight']).not.toEqual(a['transformer.h.0.attn.c_attn.weight']);
    expect(tf.memory().numTensors).toBe(before);
  });
});
