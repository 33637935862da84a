import * as tf from '@tensorflow/tfjs-core';
import { checkBackendMemory, reserveBackendMemory, freeze, safetensorsTfDtype, skipInit, type SafetensorsFile } from '@vlm/core';
import type { CausalLM } from './causal-lm';
import { planCheckpointKeys } from './checkpoint-keys';
import { createDecoderLM } from './create-decoder-lm';
import type { LoadDecoderLMOptions } from './load-from-state-dict';
import { checkShards, type WeightFiles } from './safetensors-shards';

/** The files of a Hugging Face decoder LM checkpoint, as bytes or parsed JSON. */
export interface DecoderLMFiles extends LoadDecoderLMOptions {
  /** `config.json`: object, JSON text or bytes. */
  config: unknown;
  /** `model.safetensors`, or its shards (by file name when an index is given). F16/BF16 are upcast to float32. */
  weights: WeightFiles;
  /** `model.safetensors.index.json` of a sharded checkpoint (object, text or bytes). */
  index?: unknown;
}

/**
 * Loads a frozen GPT-2, OPT or LLaMA model from `config.json` and safetensors bytes, without
 * waiting (see {@link loadDecoderLM}). Every header is checked and the keys matched against the
 * config before any tensor is allocated; then shards are read one at a time.
 *
 * @example
 * ```ts
 * const lm = loadDecoderLMSync({ config: readFileSync('config.json', 'utf8'), weights: readFileSync('model.safetensors') });
 * lm.forward({ inputIds }).logits.shape; // [batch, tokens, vocab]
 * ```
 */
export function loadDecoderLMSync(files: DecoderLMFiles): CausalLM {
  if (typeof files !== 'object' || files === null) throw new Error(`loadDecoderLM: expected { config, weights, index? }, got ${kindOf(files)}`);
  const w: unknown = files.weights;
  if (typeof w !== 'object' || w === null) {
    throw new Error(
      `loadDecoderLM: expected weights as model.safetensors bytes (Uint8Array or ArrayBuffer), a list of shards, shards by file name or { index, shards }, got ${kindOf(w)}`,
    );
  }
  const shards = checkShards(files.weights, files.index);
  const model = skipInit(() => createDecoderLM(files.config));
  try {
    const shapes: Record<string, number[]> = {};
    const fileOf = new Map<string, SafetensorsFile>();
    for (const s of shards) {
      for (const [k, e] of Object.entries(s.header.entries)) {
        shapes[k] = e.shape;
        fileOf.set(k, s.file);
      }
    }
    const plan = planCheckpointKeys(model, shapes, files);
    const params = [...plan.mapped.keys()].reduce((n, k) => n + shapes[k]!.reduce((a, d) => a * d, 1), 0);
    checkBackendMemory(4 * params, `${model.hfClass} (${(params / 1e6).toFixed(1)}M parameters as float32)`);
    reserveBackendMemory(4 * params);
    // Every weight is read straight from its file, one at a time, into the module.
    const from = new Map([...plan.mapped].map(([k, to]) => [to, k]));
    const dtypes = Object.fromEntries(
      [...from].map(([to, k]) => [to, { shape: shapes[k]!, dtype: safetensorsTfDtype(fileOf.get(k)!.entry(k).dtype) }]),
    );
    const read = (to: string, transpose: boolean) => fileOf.get(from.get(to)!)!.readTensor(from.get(to)!, { transpose });
    model.loadStateDictFrom({ shapes: dtypes, read: (to) => read(to, false), readTransposed: (to) => read(to, true) });
    files.onIgnoredKeys?.(plan.ignoredKeys);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return freeze(model);
}

/**
 * Loads a frozen GPT-2, OPT or LLaMA model (the class follows `model_type`) from a Hugging
 * Face checkpoint given as bytes: `config.json`, `model.safetensors` or its shards with
 * `model.safetensors.index.json`. Checkpoints saved from the base model (keys without
 * `transformer.` / `model.`), GPT-2's `attn.bias` buffers and LLaMA's `rotary_emb.inv_freq`
 * are handled; a tied `lm_head.weight` is not needed. Problems throw one `Error` listing the
 * missing and unexpected keys, or naming the unsupported config field or the truncated shard.
 *
 * @example
 * ```ts
 * const lm = await loadDecoderLM({
 *   config: await readFile('config.json', 'utf8'),
 *   weights: { 'model-00001-of-00002.safetensors': s1, 'model-00002-of-00002.safetensors': s2 },
 *   index: await readFile('model.safetensors.index.json', 'utf8'),
 * });
 * lm.info.numLayers; // e.g. 22
 * ```
 */
export async function loadDecoderLM(files: DecoderLMFiles): Promise<CausalLM> {
  await tf.ready();
  return loadDecoderLMSync(files);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : v === undefined ? 'undefined' : Array.isArray(v) ? 'an array' : `a value of type ${typeof v}`;
}
