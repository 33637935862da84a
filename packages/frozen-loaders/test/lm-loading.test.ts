import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeSafetensors } from '@vlm/core';
import { createDecoderLM, loadDecoderLM, loadDecoderLMSync, parseDecoderLMConfig, type CausalLM } from '../src/lm/index';
import { expectClose, readLMCase, type LMCase } from './lm-helpers';

const GPT2 = { model_type: 'gpt2', vocab_size: 97, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 };
const OPT = { model_type: 'opt', vocab_size: 101, hidden_size: 32, num_hidden_layers: 2, ffn_dim: 64, num_attention_heads: 4, max_position_embeddings: 32 };
const LLAMA = { model_type: 'llama', vocab_size: 101, hidden_size: 48, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };

describe('config parsing', () => {
  test('fills HF defaults', () => {
    const g = parseDecoderLMConfig(GPT2);
    expect(g).toMatchObject({ modelType: 'gpt2', nInner: 128, activationFunction: 'gelu_new', layerNormEpsilon: 1e-5, tieWordEmbeddings: true });
    const o = parseDecoderLMConfig(JSON.stringify(OPT));
    expect(o).toMatchObject({ modelType: 'opt', wordEmbedProjDim: 32, doLayerNormBefore: true, activationFunction: 'relu', tieWordEmbeddings: true });
    const l = parseDecoderLMConfig(new TextEncoder().encode(JSON.stringify(LLAMA)));
    expect(l).toMatchObject({ modelType: 'llama', headDim: 12, ropeTheta: 10000, rmsNormEps: 1e-6, hiddenAct: 'silu', tieWordEmbeddings: false });
    expect(parseDecoderLMConfig({ ...LLAMA, rope_scaling: null, rope_parameters: { rope_type: 'default', rope_theta: 5e5 } })).toMatchObject({ ropeTheta: 5e5 });
    expect(parseDecoderLMConfig({ ...LLAMA, eos_token_id: [2, 7] })).toMatchObject({ eosTokenIds: [2, 7] });
    const { model_type: _drop, ...noType } = GPT2;
    expect(parseDecoderLMConfig({ ...noType, architectures: ['GPT2LMHeadModel'] }).modelType).toBe('gpt2');
  });

  test.each([
    [{ ...LLAMA, rope_scaling: { rope_type: 'linear', factor: 2 } }, /field 'rope_scaling' has unsupported rope type "linear"/],
    [{ ...LLAMA, rope_parameters: { rope_type: 'yarn', rope_theta: 1e4 } }, /field 'rope_parameters'/],
    [{ ...GPT2, activation_function: 'swishy' }, /gpt2 config: field 'activation_function' has unsupported value "swishy"/],
    [{ ...OPT, activation_function: 'tanh' }, /field 'activation_function'/],
    [{ ...LLAMA, hidden_act: 'gelu_10' }, /field 'hidden_act'/],
    [{ ...GPT2, add_cross_attention: true }, /field 'add_cross_attention'/],
    [{ ...GPT2, model_type: 'mistral' }, /field 'model_type' has unsupported value "mistral"/],
    [{ ...OPT, ffn_dim: undefined }, /opt config: field 'ffn_dim' is required/],
    [{ ...LLAMA, num_key_value_heads: 3 }, /field 'num_key_value_heads' must divide/],
    [{ ...GPT2, n_head: 5 }, /field 'n_head' must divide n_embd/],
    [{ ...LLAMA, rms_norm_eps: -1 }, /field 'rms_norm_eps' must be a positive number/],
    ['{"model_type": "gpt2",', /config.json is not valid JSON/],
  ])('rejects %j', (config, message) => {
    expect(() => parseDecoderLMConfig(config)).toThrow(message);
    expect(() => createDecoderLM(config)).toThrow(message);
  });
});

/** The case's weights as separate safetensors shards plus their index. */
function shard(weights: Record<string, tf.Tensor>, parts: number) {
  const keys = Object.keys(weights).sort();
  const files: Record<string, Uint8Array> = {};
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let p = 0; p < parts; p++) {
    const name = `model-0000${p + 1}-of-0000${parts}.safetensors`;
    const mine = keys.filter((_, i) => i % parts === p);
    files[name] = writeSafetensors(Object.fromEntries(mine.map((k) => [k, weights[k]!])), { format: 'pt' });
    for (const k of mine) {
      weightMap[k] = name;
      totalSize += weights[k]!.size * 4;
    }
  }
  return { files, index: { metadata: { total_size: totalSize }, weight_map: weightMap } };
}

function expectSameWeights(a: CausalLM, b: CausalLM) {
  const sa = a.stateDict();
  const sb = b.stateDict();
  expect(Object.keys(sa)).toEqual(Object.keys(sb));
  for (const k of Object.keys(sa)) expect(sa[k]!.dataSync(), k).toEqual(sb[k]!.dataSync());
  tf.dispose([...Object.values(sa), ...Object.values(sb)]);
}

describe('checkpoint loading', () => {
  let c: LMCase;
  let reference: CausalLM;
  beforeAll(() => {
    c = readLMCase('llama_plain');
    reference = loadDecoderLMSync({ config: c.config, weights: writeSafetensors(c.weights) });
  });
  afterAll(() => {
    reference.dispose();
    c.dispose();
  });

  test('sharded checkpoint with model.safetensors.index.json (async, index as text, shards by name or in order)', async () => {
    const { files, index } = shard(c.weights, 3);
    const lm = await loadDecoderLM({ config: c.config, weights: files, index: JSON.stringify(index) });
    expectSameWeights(lm, reference);
    lm.dispose();
    const inOrder = loadDecoderLMSync({ config: c.config, weights: Object.keys(files).sort().map((n) => files[n]!), index });
    expectSameWeights(inOrder, reference);
    inOrder.dispose();
    const bundled = loadDecoderLMSync({ config: c.config, weights: { index: JSON.stringify(index), shards: files } }); // readHfCheckpointDir's shape
    expectSameWeights(bundled, reference);
    bundled.dispose();
    const noIndex = loadDecoderLMSync({ config: c.config, weights: Object.values(files) });
    expectSameWeights(noIndex, reference);
    noIndex.dispose();
  });

  test('a truncated shard is detected and named', () => {
    const { files, index } = shard(c.weights, 2);
    const name = Object.keys(files)[1]!;
    const cut = { ...files, [name]: files[name]!.subarray(0, files[name]!.length - 100) };
    expect(() => loadDecoderLMSync({ config: c.config, weights: cut, index })).toThrow(new RegExp(`${name}: .*run past the end`));
    const headerOnly = { ...files, [name]: files[name]!.subarray(0, 20) };
    expect(() => loadDecoderLMSync({ config: c.config, weights: headerOnly, index })).toThrow(new RegExp(name));
  });

  test('an inconsistent index is reported: missing shard, key in the wrong shard, unlisted key, total_size', () => {
    const { files, index } = shard(c.weights, 2);
    const [first, second] = Object.keys(files) as [string, string];
    expect(() => loadDecoderLMSync({ config: c.config, weights: { [first]: files[first]! }, index })).toThrow(new RegExp(`shard ${second} \\(named by the index\\) was not given`));
    const key = Object.keys(index.weight_map).find((k) => index.weight_map[k] === first)!;
    const moved = { ...index, weight_map: { ...index.weight_map, [key]: second } };
    expect(() => loadDecoderLMSync({ config: c.config, weights: files, index: moved })).toThrow(new RegExp(`tensor '${key}': the index puts it in ${second}`));
    const { [key]: _gone, ...fewer } = index.weight_map;
    expect(() => loadDecoderLMSync({ config: c.config, weights: files, index: { weight_map: fewer } })).toThrow(/is not in the index's weight_map/);
    expect(() => loadDecoderLMSync({ config: c.config, weights: files, index: { ...index, metadata: { total_size: 12 } } })).toThrow(/metadata.total_size is 12 bytes/);
    expect(() => loadDecoderLMSync({ config: c.config, weights: files, index: { weight_map: 3 } })).toThrow(/weight_map/);
  });

  test('missing, unexpected and mis-shaped keys are all listed in one error, and nothing leaks', () => {
    const before = tf.memory().numTensors;
    const { ['model.norm.weight']: _n, ['lm_head.weight']: _h, ...rest } = c.weights;
    const extra = tf.zeros([3]);
    const wrong = tf.zeros([101, 47]);
    const bytes = writeSafetensors({ ...rest, 'model.layers.0.mystery': extra, 'model.embed_tokens.weight': wrong });
    let message = '';
    try {
      loadDecoderLMSync({ config: c.config, weights: bytes });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/LlamaForCausalLM: the checkpoint does not match the config/);
    expect(message).toMatch(/missing keys \(2\):\n {2}model\.norm\.weight\n {2}lm_head\.weight/);
    expect(message).toMatch(/unexpected keys \(1\):\n {2}model\.layers\.0\.mystery/);
    expect(message).toMatch(/model\.embed_tokens\.weight: expected shape \[101, 48\], got \[101, 47\]/);
    tf.dispose([extra, wrong]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('base-model keys (no "model." prefix), rotary inv_freq buffers, and F16 / BF16 checkpoints', () => {
    const base: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(c.weights)) base[k.replace(/^model\./, '')] = t;
    const invFreq = tf.ones([6]);
    base['layers.0.self_attn.rotary_emb.inv_freq'] = invFreq;
    let ignored: string[] = [];
    const lm = loadDecoderLMSync({ config: c.config, weights: writeSafetensors(base), onIgnoredKeys: (k) => (ignored = k) });
    expect(ignored).toEqual(['layers.0.self_attn.rotary_emb.inv_freq']);
    expectSameWeights(lm, reference);
    lm.dispose();
    invFreq.dispose();

    for (const dtype of ['F16', 'BF16'] as const) {
      const { bytes, values } = halfCheckpoint(c.weights, dtype);
      const half = loadDecoderLMSync({ config: c.config, weights: bytes });
      const sd = half.stateDict();
      for (const [k, v] of Object.entries(values)) expect(sd[k]!.dataSync(), `${dtype} ${k}`).toEqual(v);
      tf.dispose(Object.values(sd));
      half.dispose();
    }
  });

  test("a BLIP-2 style checkpoint: keyPrefix 'language_model.', OPTModel keys ('decoder.*'), other parts ignored", () => {
    const o = readLMCase('opt_plain');
    const prefixed: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(o.weights)) prefixed[`language_model.${k.replace(/^model\./, '')}`] = t;
    const vision = tf.ones([2, 2]);
    prefixed['vision_model.embeddings.class_embedding'] = vision;
    prefixed['language_model.lm_head.weight'] = o.weights['model.decoder.embed_tokens.weight']!; // tied copy, as other tools save it
    let ignored: string[] = [];
    const lm = loadDecoderLMSync({ config: o.config, weights: writeSafetensors(prefixed), keyPrefix: 'language_model.', onIgnoredKeys: (k) => (ignored = k) });
    expect(ignored.sort()).toEqual(['language_model.lm_head.weight', 'vision_model.embeddings.class_embedding']);
    const out = lm.forward({ inputIds: o.tensors['input.input_ids']! });
    expectClose(out.logits, o.tensors['output.logits']!, 'opt logits');
    tf.dispose([out, vision] as unknown as tf.TensorContainer);
    lm.dispose();
    o.dispose();
  });

  test('GPT-2 checkpoint saved from GPT2Model: no "transformer." prefix, attn.bias buffers ignored', () => {
    const g = readLMCase('gpt2_basekeys');
    let ignored: string[] = [];
    const lm = loadDecoderLMSync({ config: g.config, weights: writeSafetensors(g.weights), onIgnoredKeys: (k) => (ignored = k) });
    expect(ignored.sort()).toEqual(['h.0.attn.bias', 'h.1.attn.bias']);
    expect(Object.keys(lm.stateDictShapes())[0]).toBe('transformer.wte.weight');
    lm.dispose();
    g.dispose();
  });
});

/** Writes `weights` as an F16 or BF16 safetensors file; returns the bytes and the exact float values stored. */
function halfCheckpoint(weights: Record<string, tf.Tensor>, dtype: 'F16' | 'BF16') {
  const names = Object.keys(weights).sort();
  const values: Record<string, Float32Array> = {};
  const chunks: Uint8Array[] = [];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const name of names) {
    const src = weights[name]!.dataSync() as Float32Array;
    const bits = new Uint16Array(src.length);
    const exact = new Float32Array(src.length);
    const u32 = new Uint32Array(1);
    const f32 = new Float32Array(u32.buffer);
    src.forEach((x, i) => {
      if (dtype === 'BF16') {
        f32[0] = x;
        bits[i] = u32[0]! >>> 16;
        u32[0] = bits[i]! << 16;
        exact[i] = f32[0]!;
      } else {
        const q = Math.max(-7.99, Math.min(7.99, Math.round(x * 256) / 256)); // exactly representable in F16
        exact[i] = q === 0 ? 0 : q; // no -0: stored as +0
        if (q === 0) bits[i] = 0;
        else {
          const e = Math.floor(Math.log2(Math.abs(q)));
          bits[i] = (q < 0 ? 0x8000 : 0) | ((e + 15) << 10) | Math.round((Math.abs(q) / 2 ** e - 1) * 1024);
        }
      }
    });
    values[name] = exact;
    const bytes = new Uint8Array(bits.buffer);
    header[name] = { dtype, shape: weights[name]!.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  while (json.length % 8) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const ch of chunks) {
    out.set(ch, at);
    at += ch.length;
  }
  return { bytes: out, values };
}
