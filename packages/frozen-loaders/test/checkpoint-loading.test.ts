// Loading real-sized checkpoints (issue 14): one test per cause, at small sizes with the same
// structure. Files over 2 GiB and over the wasm heap are written sparse (no data on disk).
import * as tf from '@tensorflow/tfjs-core';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { reserveBackendMemory, skipInit, writeSafetensors, type SafetensorsByteSource } from '@vlm/core';
import { createDecoderLM, loadDecoderLMSync } from '../src/lm/index';
import { Blip2VisionModel, loadBlip2VisionModel, loadClipVisionModel, parseBlip2VisionConfig } from '../src/vision/index';
import { readHfCheckpointDir } from '../src/node/index';
import { GOLDEN_DIR, readCase, type VisionCase } from './vision-helpers';

const GPT2 = { model_type: 'gpt2', vocab_size: 97, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 };
// TinyLlama-1.1B's config: 1.1B parameters, 4.4 GB as float32.
const TINYLLAMA = {
  model_type: 'llama', vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
  num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048, tie_word_embeddings: false,
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vlm-checkpoints-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface SparseTensor {
  name: string;
  dtype: 'F32' | 'BF16' | 'U8';
  shape: number[];
  /** The tensor's bytes; left out, the file holds a hole of zeros there. */
  data?: Uint8Array;
}

/** Writes a safetensors file whose tensors without `data` are holes (sparse: any size, no disk). */
function writeSparse(path: string, tensors: SparseTensor[]): number {
  const size = { F32: 4, BF16: 2, U8: 1 };
  const header: Record<string, unknown> = {};
  let offset = 0;
  const at: number[] = [];
  for (const t of tensors) {
    const n = t.shape.reduce((a, d) => a * d, 1) * size[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    at.push(offset);
    offset += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(8 + json.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
  prefix.set(json, 8);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix, 0, prefix.length, 0);
    tensors.forEach((t, i) => t.data && writeSync(fd, t.data, 0, t.data.length, prefix.length + at[i]!));
    ftruncateSync(fd, prefix.length + offset);
  } finally {
    closeSync(fd);
  }
  return prefix.length + offset;
}

/** Every tensor of `dict` as an F32 entry with its bytes. */
const f32Entries = (dict: Record<string, tf.Tensor>, prefix = ''): SparseTensor[] =>
  Object.entries(dict).map(([name, t]) => ({ name: prefix + name, dtype: 'F32', shape: t.shape, data: new Uint8Array((t.dataSync() as Float32Array).slice().buffer) }));

/** A byte source over `bytes` that records every range read. */
function recordingSource(bytes: Uint8Array): SafetensorsByteSource & { reads: Array<[number, number]> } {
  const reads: Array<[number, number]> = [];
  return {
    reads,
    byteLength: bytes.length,
    readInto(position, into) {
      reads.push([position, position + into.length]);
      into.set(bytes.subarray(position, position + into.length));
    },
  };
}

/**
 * Sums the bytes of every tensor the engine makes while `f` runs: from values (`makeTensor`, as
 * `tf.tensor` and the random initialisers do) or from backend memory (`makeTensorFromTensorInfo`,
 * as kernels and the wasm heap reads do).
 */
function bytesMade<T>(f: () => T): { result: T; bytes: number } {
  type Maker = (...args: any[]) => tf.Tensor;
  const engine = tf.engine() as unknown as Record<'makeTensor' | 'makeTensorFromTensorInfo', Maker>;
  const saved = { makeTensor: engine.makeTensor, makeTensorFromTensorInfo: engine.makeTensorFromTensorInfo };
  let bytes = 0;
  const count = (t: tf.Tensor) => ((bytes += t.size * (t.dtype === 'bool' ? 1 : 4)), t);
  engine.makeTensor = (...args) => count(saved.makeTensor.apply(engine, args));
  engine.makeTensorFromTensorInfo = (...args) => count(saved.makeTensorFromTensorInfo.apply(engine, args));
  try {
    return { result: f(), bytes };
  } finally {
    Object.assign(engine, saved);
  }
}

describe('cause 1: modules are built without random initialisation, weights come from the checkpoint', () => {
  test('skipInit builds a whole LM without allocating a tensor', () => {
    const before = tf.memory();
    const lm = skipInit(() => createDecoderLM(TINYLLAMA)); // 1.1B parameters: instant, no memory
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    expect(lm.stateDictShapes()['model.embed_tokens.weight']).toEqual([32000, 2048]);
    expect(() => lm.parameters()).toThrow(/LlamaForCausalLM: weight 'model\.embed_tokens\.weight' \[32000, 2048\] has no value: the module was built with skipInit/);
    lm.dispose(); // holds nothing
  });

  test('loading makes each weight once, from the checkpoint: no random values, no second copy', () => {
    const source = createDecoderLM(GPT2);
    const dict = source.stateDict();
    const bytes = writeSafetensors(dict);
    const weightBytes = Object.values(dict).reduce((n, t) => n + 4 * t.size, 0);
    const before = tf.memory().numTensors;
    const { result: lm, bytes: made } = bytesMade(() => loadDecoderLMSync({ config: GPT2, weights: bytes }));
    expect(made).toBe(weightBytes); // a random init would add as many again
    expect(tf.memory().numTensors - before).toBe(Object.keys(dict).length); // one variable per weight, nothing else kept
    const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    const [a, b] = [source.forward({ inputIds: ids }).logits, lm.forward({ inputIds: ids }).logits];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    tf.dispose([a, b, ids, ...Object.values(dict)]);
    source.dispose();
    lm.dispose();
  });
});

describe('cause 3: the header is read first and only the tensors asked for are read', () => {
  test('an LM under a prefix in a bigger checkpoint reads the header and its own tensors, nothing else', () => {
    const source = createDecoderLM(GPT2);
    const dict = source.stateDict();
    const vision = { 'vision_model.big': tf.zeros([4096, 64]) }; // 1 MB that must not be read
    const bytes = writeSafetensors({ ...Object.fromEntries(Object.entries(dict).map(([k, t]) => [`language_model.${k}`, t])), ...vision });
    const file = recordingSource(bytes);
    const lm = loadDecoderLMSync({ config: GPT2, weights: file, keyPrefix: 'language_model.' });
    const read = file.reads.reduce((n, [b, e]) => n + e - b, 0);
    const headerBytes = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(read).toBe(headerBytes + Object.values(dict).reduce((n, t) => n + 4 * t.size, 0));
    tf.dispose([...Object.values(dict), ...Object.values(vision)]);
    source.dispose();
    lm.dispose();
  });
});

describe('cause 4: files over 2 GiB are read by tensor with positional reads', () => {
  test('a 2.2 GB checkpoint (sparse) whose LM tensors sit past 2 GiB loads through readHfCheckpointDir', async () => {
    const source = createDecoderLM(GPT2);
    const dict = source.stateDict();
    const folder = join(dir, 'big');
    rmSync(folder, { recursive: true, force: true });
    (await import('node:fs')).mkdirSync(folder);
    writeFileSync(join(folder, 'config.json'), JSON.stringify(GPT2));
    // A 2.2 GB tensor first (a hole), then the LM: every LM byte is past the 2 GiB mark.
    const size = writeSparse(join(folder, 'model.safetensors'), [
      { name: 'vision_model.blob', dtype: 'U8', shape: [2_200_000_000] },
      ...f32Entries(dict, 'language_model.'),
    ]);
    expect(size).toBeGreaterThan(2 ** 31);
    const checkpoint = await readHfCheckpointDir(folder);
    const lm = loadDecoderLMSync({ config: checkpoint.config, weights: checkpoint.weights as SafetensorsByteSource, keyPrefix: 'language_model.' });
    const ids = tf.tensor2d([[5, 6, 7, 8]], undefined, 'int32');
    const [a, b] = [source.forward({ inputIds: ids }).logits, lm.forward({ inputIds: ids }).logits];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    tf.dispose([a, b, ids, ...Object.values(dict)]);
    source.dispose();
    lm.dispose();
  });
});

describe('cause 5: past the wasm heap, loading fails at once with the memory needed', () => {
  test('TinyLlama-1.1B (a sparse 2.2 GB BF16 file) on wasm: an Error naming 4.40 GB vs the 4 GB heap, nothing allocated', async () => {
    const path = join(dir, 'tinyllama.safetensors');
    const shapes = skipInit(() => createDecoderLM(TINYLLAMA)).stateDictShapes();
    writeSparse(path, Object.entries(shapes).map(([name, shape]) => ({ name, dtype: 'BF16', shape })));
    const prev = tf.getBackend();
    await tf.setBackend('wasm');
    try {
      const before = tf.memory().numTensors;
      const folder = join(dir, 'tinyllama');
      (await import('node:fs')).mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'config.json'), JSON.stringify(TINYLLAMA));
      (await import('node:fs')).renameSync(path, join(folder, 'model.safetensors'));
      const checkpoint = await readHfCheckpointDir(folder);
      const started = performance.now();
      expect(() => loadDecoderLMSync({ config: checkpoint.config, weights: checkpoint.weights as SafetensorsByteSource })).toThrow(
        /LlamaForCausalLM \(1100\.0M parameters as float32\) needs 4\.40 GB, but the wasm backend's heap holds at most 4\.29 GB .*Use the cpu backend \(in Node with @vlm\/native-matmul/,
      );
      expect(performance.now() - started).toBeLessThan(2000);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      await tf.setBackend(prev);
    }
  });
});

describe('cause 7: CLIP saved by transformers 5.x (no vision_model. prefix) loads like the 4.x layout', () => {
  let c: VisionCase;
  beforeAll(() => {
    c = readCase(join(GOLDEN_DIR, 'backbone_clip_plain'));
  });
  afterAll(() => c.dispose());

  test('same weights, same outputs, from either layout', () => {
    const unprefixed = Object.fromEntries(
      Object.entries(c.weights).filter(([k]) => k.startsWith('vision_model.')).map(([k, t]) => [k.slice('vision_model.'.length), t]),
    );
    expect(Object.keys(unprefixed)).toContain('encoder.layers.0.self_attn.q_proj.weight');
    const v4 = loadClipVisionModel({ config: c.sidecar.config, weights: c.bytes });
    const v5 = loadClipVisionModel({ config: c.sidecar.config, weights: writeSafetensors(unprefixed) });
    const pixels = c.tensors['input.pixel_values']!;
    const [a, b] = [v4.encode(pixels), v5.encode(pixels)];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    tf.dispose([a, b]);
    v4.dispose();
    v5.dispose();
  });
});

describe('BLIP-2 vision tower with separate q_bias / v_bias: only the biases are read together, the kernels stream', () => {
  test('each weight is made once (no transposed copy of every kernel), same outputs as the fused layout', () => {
    const config = { model_type: 'blip_2_vision_model', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, image_size: 28, patch_size: 14 };
    const source = new Blip2VisionModel(parseBlip2VisionConfig(config));
    const fused = source.stateDict();
    const split: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(fused)) {
      const m = /^(.*)\.qkv\.bias$/.exec(k);
      if (!m) continue;
      [split[`${m[1]}.q_bias`], , split[`${m[1]}.v_bias`]] = tf.split(t, 3);
      fused[k] = tf.tidy(() => tf.concat([split[`${m[1]}.q_bias`]!, tf.zeros([32]), split[`${m[1]}.v_bias`]!])); // HF has no k bias
      t.dispose();
    }
    for (const [k, t] of Object.entries(fused)) if (!k.endsWith('qkv.bias')) split[k] = t;
    source.loadStateDict(fused);
    const weightBytes = Object.values(fused).reduce((n, t) => n + 4 * t.size, 0);
    const biasBytes = Object.keys(fused).filter((k) => k.endsWith('qkv.bias')).reduce((n, k) => n + 4 * fused[k]!.size, 0);
    const before = tf.memory().numTensors;
    const { result: tower, bytes: made } = bytesMade(() => loadBlip2VisionModel({ config, weights: writeSafetensors(split) }));
    // the kernels and the fused biases once each, plus the q/v biases and the zeros the fusion concatenates
    expect(made).toBeLessThanOrEqual(weightBytes + biasBytes);
    expect(tf.memory().numTensors - before).toBe(Object.keys(fused).length);
    const pixels = tf.randomNormal([1, 3, 28, 28], 0, 1, 'float32', 3);
    const [a, b] = [source.encode(pixels), tower.encode(pixels)];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    tf.dispose([a, b, pixels, ...Object.values(fused), ...Object.entries(split).filter(([k]) => /_bias$/.test(k)).map(([, t]) => t)]);
    source.dispose();
    tower.dispose();
  });
});

describe('the wasm heap grows once per load (reserveBackendMemory), not in ~100 MB steps', () => {
  test('reserving grows the heap once, the weights land in it, nothing is kept; past the heap or off wasm it does nothing', async () => {
    const prev = tf.getBackend();
    await tf.setBackend('wasm');
    try {
      const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.byteLength;
      const before = tf.memory();
      reserveBackendMemory(0); // nothing
      reserveBackendMemory(8 * 1024 ** 3); // past the 4 GiB heap: skipped, no error
      expect(tf.memory().numTensors).toBe(before.numTensors);
      const bytes = 64 * 1024 ** 2;
      const start = heap();
      reserveBackendMemory(bytes);
      const reserved = heap();
      expect(reserved - start).toBeGreaterThanOrEqual(bytes - start); // grown to hold the block (it may reuse free space)
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
      const weights = Array.from({ length: 15 }, () => tf.zeros([bytes / 4 / 16])); // weights of 60 MB, one at a time
      expect(heap()).toBe(reserved); // no further growth
      tf.dispose(weights);
    } finally {
      await tf.setBackend(prev);
    }
    await tf.setBackend('cpu');
    reserveBackendMemory(64 * 1024 ** 2); // other backends: nothing
    await tf.setBackend(prev);
  });
});
