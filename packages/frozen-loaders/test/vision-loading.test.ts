import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { trainableVariables, writeSafetensors } from '@vlm/core';
import {
  loadBlip2VisionModel,
  loadClipVisionModel,
  loadOpenClipVisionTransformer,
  parseBlip2VisionConfig,
  parseClipVisionConfig,
  parseOpenClipVisionConfig,
  readCheckpointWeights,
  type ShardedSafetensors,
} from '../src/vision/index';
import { readHfCheckpointDir } from '../src/node/index';
import { GOLDEN_DIR, expectClose, readCase, type VisionCase } from './vision-helpers';

let c: VisionCase;
beforeAll(() => {
  c = readCase(join(GOLDEN_DIR, 'backbone_clip_plain'));
});
afterAll(() => c.dispose());

/** The CLIP case's weights split over two shards with an index, as save_pretrained(max_shard_size) writes them. */
function sharded(weights: Record<string, tf.Tensor>): ShardedSafetensors {
  const keys = Object.keys(weights).sort();
  const half = Math.ceil(keys.length / 2);
  const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const parts = [keys.slice(0, half), keys.slice(half)];
  const weight_map = Object.fromEntries(parts.flatMap((ks, i) => ks.map((k) => [k, names[i]!])));
  const shards = Object.fromEntries(parts.map((ks, i) => [names[i]!, writeSafetensors(Object.fromEntries(ks.map((k) => [k, weights[k]!])))]));
  return { index: JSON.stringify({ metadata: { total_size: 0 }, weight_map }), shards };
}

/** A safetensors file whose float tensors are stored as BF16 (round to nearest even) or F16. */
function halfFile(weights: Record<string, tf.Tensor>, dtype: 'BF16' | 'F16'): { bytes: Uint8Array; values: Record<string, Float32Array> } {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const encode = (v: number): number => {
    f32[0] = v;
    const x = u32[0]!;
    if (dtype === 'BF16') return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 112;
    if (exp <= 0) return sign; // tiny values flush to zero (fine for these weights)
    return sign | Math.min(0x7bff, (exp << 10) + (((x & 0x7fffff) + 0x1000) >>> 13));
  };
  const decode = (h: number): number => {
    if (dtype === 'BF16') {
      u32[0] = h << 16;
      return f32[0]!;
    }
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    const s = h & 0x8000 ? -1 : 1;
    return e === 0 ? s * m * 2 ** -24 : s * (1024 + m) * 2 ** (e - 25);
  };
  const keys = Object.keys(weights).sort();
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array[] = [];
  const values: Record<string, Float32Array> = {};
  let offset = 0;
  for (const k of keys) {
    const src = weights[k]!.dataSync() as Float32Array;
    const halves = Uint16Array.from(src, encode);
    values[k] = Float32Array.from(halves, decode);
    const bytes = new Uint8Array(halves.buffer);
    header[k] = { dtype, shape: weights[k]!.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const ch of chunks) {
    out.set(ch, at);
    at += ch.length;
  }
  return { bytes: out, values };
}

describe('checkpoint formats', () => {
  test('a sharded checkpoint (index + 2 shards) loads the same tower as model.safetensors', () => {
    const clip = loadClipVisionModel({ config: c.sidecar.config, weights: sharded(c.weights) });
    const out = clip.forward(c.tensors['input.pixel_values']!);
    expectClose(out.lastHiddenState, c.tensors['output.last_hidden_state']!, 'last_hidden_state (sharded)');
    tf.dispose([out.lastHiddenState, out.poolerOutput]);
    expect(trainableVariables(clip)).toHaveLength(0);
    clip.dispose();
  });

  for (const dtype of ['BF16', 'F16'] as const) {
    test(`${dtype} weights are upcast exactly to float32`, () => {
      const { bytes, values } = halfFile(c.weights, dtype);
      const clip = loadClipVisionModel({ config: c.sidecar.config, weights: bytes });
      const sd = clip.stateDict();
      for (const [k, t] of Object.entries(sd)) expect(t.dataSync(), k).toEqual(values[k]);
      tf.dispose(Object.values(sd));
      const out = clip.forward(c.tensors['input.pixel_values']!);
      expectClose(out.lastHiddenState, c.tensors['output.last_hidden_state']!, `${dtype} last_hidden_state`, 0.1, 0.05);
      tf.dispose([out.lastHiddenState, out.poolerOutput]);
      clip.dispose();
    });
  }

  test('readHfCheckpointDir reads config.json + model.safetensors, or the index and its shards', async () => {
    const single = mkdtempSync(join(tmpdir(), 'vlm-clip-'));
    writeFileSync(join(single, 'config.json'), JSON.stringify(c.sidecar.config));
    writeFileSync(join(single, 'model.safetensors'), c.bytes);
    const a = await readHfCheckpointDir(single);
    expect((a.weights as { byteLength: number }).byteLength).toBe(c.bytes.length); // a byte source: nothing read yet

    const dir = mkdtempSync(join(tmpdir(), 'vlm-clip-sharded-'));
    const s = sharded(c.weights);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c.sidecar.config));
    writeFileSync(join(dir, 'model.safetensors.index.json'), s.index as string);
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), s.shards['model-00001-of-00002.safetensors'] as Uint8Array);
    await expect(readHfCheckpointDir(dir)).rejects.toThrow(/missing in .*model-00002-of-00002\.safetensors/);
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), s.shards['model-00002-of-00002.safetensors'] as Uint8Array);
    const clip = loadClipVisionModel(await readHfCheckpointDir(dir), { layer: -2 });
    const tokens = clip.encode(c.tensors['input.pixel_values']!);
    expect(tokens.shape).toEqual([2, 16, 32]);
    tokens.dispose();
    clip.dispose();
  });
});

describe('loading errors are clear', () => {
  test('missing and unexpected keys are listed, with the loader and the prefix', () => {
    const { 'vision_model.post_layernorm.bias': _a, 'vision_model.encoder.layers.1.mlp.fc2.weight': _b, ...rest } = c.weights;
    const extra = { ...rest, 'vision_model.encoder.layers.2.mlp.fc1.weight': tf.zeros([64, 32]), 'vision_model.head.weight': tf.zeros([2]) };
    const before = tf.memory().numTensors;
    let message = '';
    try {
      loadClipVisionModel({ config: c.sidecar.config, weights: writeSafetensors(extra) });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^loadClipVisionModel: Error\(s\) in loading state_dict/);
    expect(message).toMatch(/Missing key\(s\) in state_dict:\n\s+vision_model\.encoder\.layers\.1\.mlp\.fc2\.weight\n\s+vision_model\.post_layernorm\.bias/);
    expect(message).toMatch(/Unexpected key\(s\) in state_dict:\n\s+vision_model\.encoder\.layers\.2\.mlp\.fc1\.weight\n\s+vision_model\.head\.weight/);
    expect(tf.memory().numTensors).toBe(before); // the half-built model and the read tensors are released
    tf.dispose([extra['vision_model.encoder.layers.2.mlp.fc1.weight'], extra['vision_model.head.weight']]);
  });

  test('open_clip: a missing resblock key under vision_encoder. is listed without the prefix', () => {
    const e = readCase(join(GOLDEN_DIR, 'flamingo_e2e', 'flamingo_e2e_n1'));
    const kept = Object.fromEntries(Object.entries(e.weights).filter(([k]) => k.startsWith('vision_encoder.') && !k.endsWith('resblocks.1.attn.in_proj_bias')));
    expect(() => loadOpenClipVisionTransformer({ config: e.sidecar.open_clip_config, weights: writeSafetensors(kept) })).toThrow(
      /loadOpenClipVisionTransformer \(checkpoint keys under 'vision_encoder\.'.*\n.*Missing key\(s\) in state_dict:\n\s+transformer\.resblocks\.1\.attn\.in_proj_bias/,
    );
    e.dispose();
  });

  test('a shape mismatch (a config that does not match the weights) names the key and both shapes', () => {
    const config = { ...c.sidecar.config, intermediate_size: 48 };
    expect(() => loadClipVisionModel({ config, weights: c.bytes })).toThrow(/vision_model\.encoder\.layers\.0\.mlp\.fc1\.weight: expected shape \[48, 32\], got \[64, 32\]/);
  });

  test('unsupported config values name the field and what is supported', () => {
    expect(() => parseClipVisionConfig({ ...c.sidecar.config, hidden_act: 'swish' })).toThrow(
      /CLIPVisionConfig: unsupported value "swish" for config field 'hidden_act' \(supported: "quick_gelu", "gelu"/,
    );
    expect(() => parseClipVisionConfig({ model_type: 'siglip_vision_model' })).toThrow(/unsupported value "siglip_vision_model" for config field 'model_type'/);
    expect(() => parseClipVisionConfig({ ...c.sidecar.config, patch_size: 7 })).toThrow(/config field 'patch_size' \(supported: a divisor of image_size 32\)/);
    expect(() => parseBlip2VisionConfig({ model_type: 'blip_2_vision_model', num_channels: 1 })).toThrow(/config field 'num_channels'/);
    expect(() => parseBlip2VisionConfig({ model_type: 'instructblip' })).toThrow(/config field 'model_type'/);
    const oc = { quick_gelu: true, vision_cfg: { image_size: 32, patch_size: 8, width: 32, layers: 2, head_width: 8 } };
    expect(parseOpenClipVisionConfig(oc)).toMatchObject({ heads: 4, mlpWidth: 128, quickGelu: true });
    expect(() => parseOpenClipVisionConfig({ ...oc, vision_cfg: { ...oc.vision_cfg, ls_init_value: 1e-5 } })).toThrow(/config field 'ls_init_value'/);
    expect(() => parseOpenClipVisionConfig({ ...oc, vision_cfg: { ...oc.vision_cfg, timm_model_name: 'vit_base' } })).toThrow(/config field 'timm_model_name'/);
    expect(() => parseOpenClipVisionConfig({ ...oc, vision_cfg: { ...oc.vision_cfg, layers: [3, 4, 6, 3] } })).toThrow(/config field 'layers' \(supported: an integer/);
    expect(() => parseOpenClipVisionConfig({ ...oc, vision_cfg: { ...oc.vision_cfg, attentional_pool: true } })).toThrow(/config field 'attentional_pool'/);
    expect(() => loadBlip2VisionModel({ config: { model_type: 'blip-2' }, weights: c.bytes })).toThrow(/'model_type'/);
  });

  test('a truncated shard names the shard file', () => {
    const s = sharded(c.weights);
    const name = 'model-00002-of-00002.safetensors';
    const full = s.shards[name] as Uint8Array;
    for (const cut of [full.length - 100, 20, 4]) {
      const truncated = { ...s, shards: { ...s.shards, [name]: full.slice(0, cut) } };
      expect(() => loadClipVisionModel({ config: c.sidecar.config, weights: truncated })).toThrow(
        new RegExp(`Could not read '${name}' \\(${cut} bytes; truncated or corrupt\\?\\)`),
      );
    }
    const single = c.bytes.slice(0, c.bytes.length - 7);
    const before = tf.memory().numTensors;
    expect(() => loadClipVisionModel({ config: c.sidecar.config, weights: single })).toThrow(/'model\.safetensors' \(\d+ bytes; truncated or corrupt\?\).*run past the end/);
    expect(() => loadBlip2VisionModel({ config: { model_type: 'blip_2_vision_model' }, weights: single })).toThrow(/truncated or corrupt/);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('a shard the index names but that was not given, and a shard that lacks its tensors', () => {
    const s = sharded(c.weights);
    const { 'model-00002-of-00002.safetensors': second, ...onlyFirst } = s.shards;
    expect(() => readCheckpointWeights({ index: s.index, shards: onlyFirst })).toThrow(/names shard file\(s\) that were not provided: model-00002-of-00002\.safetensors/);
    const swapped = { index: s.index, shards: { ...onlyFirst, 'model-00002-of-00002.safetensors': onlyFirst['model-00001-of-00002.safetensors']! } };
    expect(() => readCheckpointWeights(swapped)).toThrow(/puts tensor\(s\) in 'model-00002-of-00002\.safetensors' that the shard does not contain/);
    expect(() => readCheckpointWeights({ index: '{"weight_map": 3}', shards: { a: second! } })).toThrow(/expected "weight_map"/);
  });

  test('a checkpoint with no vision_model.* keys is refused by the CLIP loader', () => {
    expect(() => loadClipVisionModel({ config: c.sidecar.config, weights: writeSafetensors({ 'text_model.x': c.weights['vision_model.post_layernorm.bias']! }) })).toThrow(
      /expected a CLIP vision checkpoint \('vision_model\.\*' keys from transformers 4\.x, or 'embeddings\.\*'\/'encoder\.\*' keys from a transformers 5\.x CLIPVisionModel\), got one with neither/,
    );
  });
});
