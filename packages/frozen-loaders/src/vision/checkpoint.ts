import * as tf from '@tensorflow/tfjs-core';
import { freeze, parseSafetensorsHeader, readSafetensors, type Module, type StateDict } from '@vlm/core';
import { parseConfigJson } from './hf-config';

/** The bytes of one `.safetensors` file. */
export type SafetensorsBytes = Uint8Array | ArrayBuffer;

/** A sharded Hugging Face checkpoint: `model.safetensors.index.json` and its shard files. */
export interface ShardedSafetensors {
  /** The text (or parsed JSON) of `model.safetensors.index.json`: `{ weight_map: { key: shardFileName } }`. */
  index:
    | string
    | {
        /** Tensor key → file name of the shard that holds it. */
        weight_map: Record<string, string>;
        /** The index's `metadata` (e.g. `{ total_size }`); not read. */
        metadata?: unknown;
      };
  /** Every shard's bytes, by the file name the index uses (`model-00001-of-00002.safetensors`). */
  shards: Record<string, SafetensorsBytes>;
}

/** The weights of a checkpoint: one `model.safetensors`, or a sharded set. */
export type CheckpointWeights = SafetensorsBytes | ShardedSafetensors;

/** A Hugging Face style checkpoint: `config.json` plus its safetensors weights. */
export interface HfCheckpoint {
  /** `config.json` text or the parsed object. */
  config: string | Record<string, unknown>;
  /** `model.safetensors` bytes, or the sharded files with their index. */
  weights: CheckpointWeights;
}

/** Options of {@link readCheckpointWeights}. */
export interface ReadCheckpointOptions {
  /** Read only the tensors whose key passes (others are never decoded). Default: all. */
  filter?: (key: string) => boolean;
  /** File name that errors give for a single-file checkpoint. Default: `'model.safetensors'`. */
  source?: string;
}

const isSharded = (w: CheckpointWeights): w is ShardedSafetensors =>
  !(w instanceof Uint8Array) && !(w instanceof ArrayBuffer) && typeof w === 'object' && w !== null && 'shards' in w;

/**
 * Reads the tensors of a checkpoint (one safetensors file or a sharded set) into new float32 /
 * int32 tensors, in PyTorch layout under their file keys; F16 and BF16 are upcast exactly. The
 * caller owns and disposes them. Errors name the file: a truncated or corrupt file or shard, a
 * shard the index names but `shards` lacks, a tensor the index puts in a shard that does not
 * hold it, a key found in two shards.
 *
 * @example
 * ```ts
 * const dict = readCheckpointWeights({ index: indexJson, shards: { 'model-00001-of-00002.safetensors': a, 'model-00002-of-00002.safetensors': b } },
 *   { filter: (k) => k.startsWith('vision_model.') });
 * dict['vision_model.post_layernorm.weight'].shape; // [1024]
 * ```
 */
export function readCheckpointWeights(weights: CheckpointWeights, options: ReadCheckpointOptions = {}): StateDict {
  const filter = options.filter ?? (() => true);
  if (!isSharded(weights)) return readSelected(weights, options.source ?? 'model.safetensors', filter);

  const indexName = 'model.safetensors.index.json';
  const index = parseConfigJson(weights.index as string | Record<string, unknown>, indexName);
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new Error(`${indexName}: expected "weight_map": { "<tensor key>": "<shard file name>" }, got ${JSON.stringify(map)?.slice(0, 80)}`);
  }
  const byShard = new Map<string, string[]>();
  for (const [key, shard] of Object.entries(map as Record<string, string>)) {
    if (!filter(key)) continue;
    byShard.set(shard, [...(byShard.get(shard) ?? []), key]);
  }
  const absent = [...byShard.keys()].filter((s) => !(s in weights.shards));
  if (absent.length) {
    throw new Error(
      `${indexName} names shard file(s) that were not provided: ${absent.join(', ')} (provided: ${Object.keys(weights.shards).join(', ') || 'none'})`,
    );
  }
  const out: StateDict = {};
  try {
    for (const [shard, keys] of byShard) {
      const wanted = new Set(keys);
      const part = readSelected(weights.shards[shard]!, shard, (k) => wanted.has(k));
      const lacking = keys.filter((k) => !(k in part));
      if (lacking.length) {
        tf.dispose(Object.values(part));
        const list = lacking.slice(0, 10).join(', ') + (lacking.length > 10 ? `, … (${lacking.length} in all)` : '');
        throw new Error(`${indexName} puts tensor(s) in '${shard}' that the shard does not contain (wrong or truncated shard?): ${list}`);
      }
      Object.assign(out, part);
    }
  } catch (e) {
    tf.dispose(Object.values(out));
    throw e;
  }
  return out;
}

/** Reads the tensors of one safetensors file that pass `filter`, decoding nothing else. */
function readSelected(bytes: SafetensorsBytes, source: string, filter: (key: string) => boolean): StateDict {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let header: ReturnType<typeof parseSafetensorsHeader>;
  try {
    header = parseSafetensorsHeader(u8, { source });
  } catch (e) {
    throw new Error(`Could not read '${source}' (${u8.length} bytes; truncated or corrupt?): ${(e as Error).message}`);
  }
  const keys = Object.keys(header.entries).filter(filter);
  if (keys.length === Object.keys(header.entries).length) return readSafetensors(u8, { source }).tensors;
  // Re-pack the selected tensors as a small safetensors file, so that the core reader decodes
  // (and upcasts) only what is needed.
  const parts: string[] = [];
  let size = 0;
  for (const k of keys) {
    const e = header.entries[k]!;
    const n = e.dataOffsets[1] - e.dataOffsets[0];
    parts.push(`${JSON.stringify(k)}:${JSON.stringify({ dtype: e.dtype, shape: e.shape, data_offsets: [size, size + n] })}`);
    size += n;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const packed = new Uint8Array(8 + json.length + size);
  new DataView(packed.buffer).setBigUint64(0, BigInt(json.length), true);
  packed.set(json, 8);
  let at = 8 + json.length;
  for (const k of keys) {
    const [b, e] = header.entries[k]!.dataOffsets;
    packed.set(u8.subarray(header.dataStart + b, header.dataStart + e), at);
    at += e - b;
  }
  return readSafetensors(packed, { source }).tensors;
}

/** Options of {@link loadFrozenWeights}. */
export interface LoadFrozenWeightsOptions {
  /** Checkpoint key prefix of the module's weights (`'vision_model.'`), stripped before loading. Default: `''`. */
  prefix?: string;
  /**
   * Keys under the prefix (after stripping it) that are known non-weights and skipped, e.g.
   * `embeddings.position_ids` buffers or an unused `proj`.
   */
  ignore?: ReadonlyArray<string | RegExp>;
  /**
   * Renames or converts tensors (after prefix stripping) before the strict load, e.g. LAVIS's
   * separate `q_bias` / `v_bias` into HF's fused `qkv.bias`. Must dispose what it replaces.
   */
  remap?: (dict: StateDict) => StateDict;
  /** How errors name the loader, e.g. `'loadClipVisionModel'`. */
  what: string;
}

/**
 * Reads the weights under `prefix` from a checkpoint, builds the module with `create` and loads
 * them with PyTorch's strict semantics (one error lists every missing key, unexpected key and
 * shape mismatch; keys outside the prefix are not read), then freezes the module. The checkpoint
 * is read first, so a truncated or corrupt file fails before any (large) module is allocated.
 * The read tensors are disposed; on error the module is too.
 *
 * @example
 * ```ts
 * const tower = loadFrozenWeights(() => new Blip2VisionModel(cfg), weights, { prefix: 'vision_model.', what: 'loadBlip2VisionModel' });
 * tower.parameters().every((v) => !v.trainable); // true
 * ```
 */
export function loadFrozenWeights<M extends Module>(create: () => M, weights: CheckpointWeights, options: LoadFrozenWeightsOptions): M {
  const prefix = options.prefix ?? '';
  const ignore = options.ignore ?? [];
  const skip = (k: string) => ignore.some((p) => (typeof p === 'string' ? p === k : p.test(k)));
  const raw = readCheckpointWeights(weights, { filter: (k) => k.startsWith(prefix) && !skip(k.slice(prefix.length)) });
  let dict: StateDict = Object.fromEntries(Object.entries(raw).map(([k, t]) => [k.slice(prefix.length), t]));
  let module: M | undefined;
  try {
    if (options.remap) dict = options.remap(dict);
    module = create();
    module.loadStateDict(dict);
    return freeze(module);
  } catch (e) {
    module?.dispose();
    const where = prefix ? ` (checkpoint keys under '${prefix}', shown without it)` : '';
    throw new Error(`${options.what}${where}: ${(e as Error).message}`);
  } finally {
    tf.dispose(Object.values(dict));
  }
}

/**
 * The key prefix under which a checkpoint holds a tower: the first of `candidates` that some
 * key starts with, or `''` when none does (a checkpoint of the tower alone).
 *
 * @example
 * ```ts
 * detectPrefix(weights, ['vision_model.']); // 'vision_model.' for a whole BLIP-2 checkpoint, '' for Blip2VisionModel alone
 * ```
 */
export function detectPrefix(weights: CheckpointWeights, candidates: readonly string[]): string {
  const keys = checkpointKeys(weights);
  return candidates.find((p) => keys.some((k) => k.startsWith(p))) ?? '';
}

/**
 * Every tensor key of a checkpoint (from the header or the index; no tensor is read).
 *
 * @example
 * ```ts
 * checkpointKeys(readFileSync('model.safetensors')).filter((k) => k.startsWith('vision_model.')).length; // 196 for CLIP ViT-B
 * ```
 */
export function checkpointKeys(weights: CheckpointWeights): string[] {
  if (isSharded(weights)) {
    const index = parseConfigJson(weights.index as string | Record<string, unknown>, 'model.safetensors.index.json');
    return Object.keys((index.weight_map as Record<string, string>) ?? {});
  }
  const u8 = weights instanceof Uint8Array ? weights : new Uint8Array(weights);
  try {
    return Object.keys(parseSafetensorsHeader(u8, { source: 'model.safetensors' }).entries);
  } catch (e) {
    throw new Error(`Could not read 'model.safetensors' (${u8.length} bytes; truncated or corrupt?): ${(e as Error).message}`);
  }
}
