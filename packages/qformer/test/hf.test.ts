import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { readSafetensors, writeSafetensors, type SafetensorsByteSource, type StateDict } from '@vlm/core';
import {
  QFormer,
  loadHfBlip2StateDict,
  qformerArgsFromHfBlip2Config,
  qformerFromHfBlip2,
  qformerStateDictFromHf,
  qformerStateDictToHf,
} from '@vlm/qformer';
import { loadGolden, tolRatio } from './helpers';

// The golden qformer_query_proj case, re-keyed to what Blip2ForConditionalGeneration saves:
// query_tokens, qformer.*, language_projection.*; no text embeddings; the text FFN keys that older
// Salesforce checkpoints carry; and vision/LM weights that the Q-Former must ignore.
function hfCheckpoint(params: StateDict): StateDict {
  const hf: StateDict = {};
  for (const [k, t] of Object.entries(params)) {
    if (k.startsWith('embeddings.')) continue;
    hf[k === 'query_tokens' || k.startsWith('language_projection.') ? k : `qformer.${k}`] = t;
  }
  return hf;
}

// A Blip2Config as config.json holds it (only the fields the Q-Former reads, plus noise).
function hfConfig(sidecarConfig: Record<string, any>) {
  const { num_query_tokens, llm_hidden_size, use_text_input, encoder_hidden_size, ...q } = sidecarConfig;
  return {
    model_type: 'blip-2',
    num_query_tokens,
    image_token_index: 108,
    qformer_config: { ...q, encoder_hidden_size, hidden_act: 'gelu', model_type: 'blip_2_qformer', use_qformer_text_input: false },
    vision_config: { hidden_size: encoder_hidden_size, model_type: 'blip_2_vision_model' },
    text_config: { hidden_size: llm_hidden_size, model_type: 'opt' },
  };
}

/** A byte source over `bytes` that counts the bytes read. */
function countingSource(bytes: Uint8Array): SafetensorsByteSource & { read: number } {
  const source = {
    read: 0,
    byteLength: bytes.length,
    readInto(position: number, into: Uint8Array) {
      source.read += into.length;
      into.set(bytes.subarray(position, position + into.length));
    },
  };
  return source;
}

describe('Hugging Face BLIP-2 weights', () => {
  test('from the checkpoint files (shards), only the headers and the Q-Former tensors are read, never the vision tower or the LM', () => {
    const g = loadGolden('qformer_query_proj');
    const hf = hfCheckpoint(g.params);
    const big = { 'vision_model.encoder.layers.0.mlp.fc1.weight': tf.zeros([512, 256]), 'language_model.lm_head.weight': tf.zeros([1024, 256]) };
    const keys = Object.keys(hf);
    const files = [
      writeSafetensors({ ...Object.fromEntries(keys.slice(0, 20).map((k) => [k, hf[k]!])), 'vision_model.encoder.layers.0.mlp.fc1.weight': big['vision_model.encoder.layers.0.mlp.fc1.weight'] }),
      writeSafetensors({ ...Object.fromEntries(keys.slice(20).map((k) => [k, hf[k]!])), 'language_model.lm_head.weight': big['language_model.lm_head.weight'] }),
    ];
    const shards = files.map(countingSource);
    const config = hfConfig(g.sidecar.config);
    const before = tf.memory().numTensors;
    const q = qformerFromHfBlip2(config, shards);
    const own = Object.values(q.stateDictShapes()).reduce((n, s) => n + 4 * s.reduce((a, d) => a * d, 1), 0);
    const headers = files.reduce((n, f) => n + 8 + Number(new DataView(f.buffer, f.byteOffset, 8).getBigUint64(0, true)), 0);
    expect(shards[0]!.read + shards[1]!.read).toBe(headers + own);
    const reference = qformerFromHfBlip2(config, hf);
    const a = q.forward(g.tensors['input.image_embeds']!);
    const b = reference.forward(g.tensors['input.image_embeds']!);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    tf.dispose([a, b, ...Object.values(big)]);
    q.dispose();
    reference.dispose();
    expect(tf.memory().numTensors).toBe(before - Object.keys(big).length);
    g.dispose();
  });


  test('a golden case re-keyed to Hugging Face names imports, reproduces the golden outputs and exports back to the same names', () => {
    const g = loadGolden('qformer_query_proj');
    const extra = { 'vision_model.embeddings.class_embedding': tf.zeros([1, 1, 24]), 'language_model.model.decoder.embed_tokens.weight': tf.zeros([5, 40]) };
    const hf: StateDict = { ...hfCheckpoint(g.params), ...extra };
    const config = hfConfig(g.sidecar.config);
    const args = qformerArgsFromHfBlip2Config(config);
    expect(args).toMatchObject({ hiddenSize: 32, numQueryTokens: 8, encoderHiddenSize: 24, llmHiddenSize: 40, useTextInput: false, layerNormEps: 1e-12 });

    const before = tf.memory().numTensors;
    const q = qformerFromHfBlip2(config, hf);
    const out = q.encode({ imageEmbeds: g.tensors['input.image_embeds']! });
    expect(tolRatio(out.projected!, g.tensors['output.out']!, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    expect(tolRatio(out.lastHiddenState, g.tensors['output.last_hidden_state']!, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    const visual = q.forward(g.tensors['input.image_embeds']!);
    expect(visual.shape).toEqual([2, 8, 40]);

    const { ignoredKeys } = loadHfBlip2StateDict(q, hf);
    expect(ignoredKeys.sort()).toEqual([
      'language_model.model.decoder.embed_tokens.weight',
      'qformer.encoder.layer.0.intermediate.dense.bias',
      'qformer.encoder.layer.0.intermediate.dense.weight',
      'qformer.encoder.layer.0.output.LayerNorm.bias',
      'qformer.encoder.layer.0.output.LayerNorm.weight',
      'qformer.encoder.layer.0.output.dense.bias',
      'qformer.encoder.layer.0.output.dense.weight',
      'qformer.encoder.layer.1.intermediate.dense.bias',
      'qformer.encoder.layer.1.intermediate.dense.weight',
      'qformer.encoder.layer.1.output.LayerNorm.bias',
      'qformer.encoder.layer.1.output.LayerNorm.weight',
      'qformer.encoder.layer.1.output.dense.bias',
      'qformer.encoder.layer.1.output.dense.weight',
      'qformer.encoder.layer.2.intermediate.dense.bias',
      'qformer.encoder.layer.2.intermediate.dense.weight',
      'qformer.encoder.layer.2.output.LayerNorm.bias',
      'qformer.encoder.layer.2.output.LayerNorm.weight',
      'qformer.encoder.layer.2.output.dense.bias',
      'qformer.encoder.layer.2.output.dense.weight',
      'vision_model.embeddings.class_embedding',
    ]);

    const exported = qformerStateDictToHf(q);
    const expectedKeys = Object.keys(hf).filter((k) => !ignoredKeys.includes(k));
    expect(Object.keys(exported).sort()).toEqual(expectedKeys.sort());
    for (const k of expectedKeys) expect(Array.from(exported[k]!.dataSync()), k).toEqual(Array.from(hf[k]!.dataSync()));
    tf.dispose([...Object.values(exported), ...Object.values(out), visual]);
    q.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(extra));
    g.dispose();
  });

  test('BF16 and F16 checkpoints are upcast exactly to float32 and load', () => {
    const g = loadGolden('qformer_query_proj');
    const hf = hfCheckpoint(g.params);
    // every tensor as BF16 (float32 truncated to its top 16 bits), query_tokens as F16 of exact halves
    const entries: Array<[string, 'BF16' | 'F16', number[], Uint16Array]> = [];
    const expected: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(hf)) {
      if (k === 'query_tokens') {
        const halves = [0x3c00, 0xb400, 0x3800, 0x0000, 0xc000]; // 1, -0.25, 0.5, 0, -2
        const values = [1, -0.25, 0.5, 0, -2];
        const bits = Uint16Array.from({ length: t.size }, (_, i) => halves[i % 5]!);
        entries.push([k, 'F16', t.shape, bits]);
        expected[k] = Float32Array.from({ length: t.size }, (_, i) => values[i % 5]!);
        continue;
      }
      const f32 = t.dataSync() as Float32Array;
      const u32 = new Uint32Array(Float32Array.from(f32).buffer);
      entries.push([k, 'BF16', t.shape, Uint16Array.from(u32, (u) => u >>> 16)]);
      expected[k] = new Float32Array(Uint32Array.from(u32, (u) => (u >>> 16) << 16).buffer);
    }
    const { tensors } = readSafetensors(writeHalfSafetensors(entries), { source: 'bf16.safetensors' });
    for (const [k, t] of Object.entries(tensors)) {
      expect(t.dtype).toBe('float32');
      expect(Array.from(t.dataSync())).toEqual(Array.from(expected[k]!));
    }
    const q = qformerFromHfBlip2(hfConfig(g.sidecar.config), tensors);
    const sd = q.stateDict();
    expect(Array.from(sd.query_tokens!.dataSync())).toEqual(Array.from(expected.query_tokens!));
    tf.dispose([...Object.values(sd), ...Object.values(tensors)]);
    q.dispose();
    g.dispose();
  });

  test('missing, unexpected and mis-shaped keys are one clear error in Hugging Face names', () => {
    const g = loadGolden('qformer_query_proj');
    const config = hfConfig(g.sidecar.config);
    const hf = hfCheckpoint(g.params);
    const { ['qformer.encoder.layer.1.attention.attention.query.weight']: _dropped, ...missing } = hf;
    expect(() => qformerFromHfBlip2(config, missing)).toThrow(/Missing key\(s\):\n {2}qformer\.encoder\.layer\.1\.attention\.attention\.query\.weight/);
    const extra = tf.zeros([32, 32]);
    expect(() => qformerFromHfBlip2(config, { ...hf, 'qformer.encoder.layer.7.attention.attention.query.weight': extra })).toThrow(
      /Unexpected key\(s\):\n {2}qformer\.encoder\.layer\.7\.attention\.attention\.query\.weight/,
    );
    const wrong = tf.zeros([1, 8, 31]);
    expect(() => qformerFromHfBlip2(config, { ...hf, query_tokens: wrong })).toThrow(/query_tokens: expected shape \[1, 8, 32\], got \[1, 8, 31\]/);
    // the renaming alone
    const { stateDict, ignoredKeys } = qformerStateDictFromHf({ 'qformer.layernorm.weight': extra, 'vision_model.x': extra, 'qformer.embeddings.position_ids': extra });
    expect(Object.keys(stateDict)).toEqual(['layernorm.weight']);
    expect(ignoredKeys).toEqual(['vision_model.x', 'qformer.embeddings.position_ids']);
    tf.dispose([extra, wrong]);
    g.dispose();
  });

  test('a Q-Former with a text branch exports text embeddings under the retrieval-model names and reloads them', () => {
    const q = new QFormer({ hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 16, encoderHiddenSize: 6, numQueryTokens: 2, vocabSize: 10, maxPositionEmbeddings: 4 });
    const hf = qformerStateDictToHf(q);
    expect(Object.keys(hf)).toEqual(expect.arrayContaining(['embeddings.word_embeddings.weight', 'qformer.encoder.layer.0.intermediate.dense.weight', 'query_tokens']));
    const again = new QFormer(q.args);
    expect(loadHfBlip2StateDict(again, hf).ignoredKeys).toEqual([]);
    tf.dispose(Object.values(hf));
    q.dispose();
    again.dispose();
  });
});

/** A safetensors file of 16-bit tensors, written byte by byte as the format specifies. */
function writeHalfSafetensors(entries: Array<[string, 'BF16' | 'F16', number[], Uint16Array]>): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, dtype, shape, bits] of entries) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + 2 * bits.length] };
    offset += 2 * bits.length;
  }
  let json = JSON.stringify(header);
  while (json.length % 8) json += ' ';
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const [, , , bits] of entries) {
    for (const b of bits) {
      view.setUint16(at, b, true);
      at += 2;
    }
  }
  return out;
}
