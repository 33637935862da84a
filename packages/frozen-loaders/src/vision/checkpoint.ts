import * as tf from '@tensorflow/tfjs-core';
import { checkBackendMemory, reserveBackendMemory, freeze, SafetensorsFile, safetensorsTfDtype, skipInit, type Module, type SafetensorsByteSource, type StateDict } from '@vlm/core';
import { parseConfigJson } from './hf-config';

/**
 * One `.safetensors` file: its bytes, or a byte source that reads it in parts (as
 * `readHfCheckpointDir` (`@vlm/frozen-loaders/node`) makes for files of any size: only the header and the tensors
 * that are asked for are read).
 */
export type SafetensorsBytes = Uint8Array | ArrayBuffer | SafetensorsByteSource;

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

const byteLength = (b: SafetensorsBytes): number => (b as { byteLength?: unknown }).byteLength as number;

/** Opens one file (header only), naming it and its size when it is truncated or corrupt. */
function openFile(bytes: SafetensorsBytes, source: string): SafetensorsFile {
  if (typeof bytes !== 'object' || bytes === null) {
    throw new Error(`${source}: expected the file's bytes (Uint8Array or ArrayBuffer) or { index, shards }, got ${bytes === null ? 'null' : typeof bytes}`);
  }
  try {
    return SafetensorsFile.open(bytes, { source });
  } catch (e) {
    throw new Error(`Could not read '${source}' (${byteLength(bytes)} bytes; truncated or corrupt?): ${(e as Error).message}`);
  }
}

/**
 * The files of a checkpoint opened by header, and which file holds each tensor key that passes
 * `filter`: no tensor data is read. Errors as {@link readCheckpointWeights} lists them.
 */
function openCheckpoint(weights: CheckpointWeights, options: ReadCheckpointOptions = {}): Map<string, SafetensorsFile> {
  const filter = options.filter ?? (() => true);
  const where = new Map<string, SafetensorsFile>();
  if (!isSharded(weights)) {
    const file = openFile(weights, options.source ?? 'model.safetensors');
    for (const k of file.names()) if (filter(k)) where.set(k, file);
    return where;
  }
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
  const absent = [...byShard.keys()].filter((s) => !Object.prototype.hasOwnProperty.call(weights.shards, s));
  if (absent.length) {
    throw new Error(
      `${indexName} names shard file(s) that were not provided: ${absent.join(', ')} (provided: ${Object.keys(weights.shards).join(', ') || 'none'})`,
    );
  }
  for (const [shard, keys] of byShard) {
    const file = openFile(weights.shards[shard]!, shard);
    const lacking = keys.filter((k) => !Object.prototype.hasOwnProperty.call(file.header.entries, k));
    if (lacking.length) {
      const list = lacking.slice(0, 10).join(', ') + (lacking.length > 10 ? `, … (${lacking.length} in all)` : '');
      throw new Error(`${indexName} puts tensor(s) in '${shard}' that the shard does not contain (wrong or truncated shard?): ${list}`);
    }
    for (const k of keys) where.set(k, file);
  }
  return where;
}

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
  const where = openCheckpoint(weights, options);
  const out: StateDict = {};
  try {
    for (const [key, file] of where) out[key] = file.readTensor(key);
  } catch (e) {
    tf.dispose(Object.values(out));
    throw e;
  }
  return out;
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
   * Renames a key (after prefix stripping) to the module's name for it, e.g. to accept the
   * layout of another `transformers` version. Default: unchanged.
   */
  rename?: (key: string) => string;
  /**
   * Renames or converts tensors (after prefix stripping and renaming) before the strict load,
   * e.g. LAVIS's separate `q_bias` / `v_bias` into HF's fused `qkv.bias`. Must dispose what it
   * replaces. It is given the tensors that {@link LoadFrozenWeightsOptions.remapKeys} selects,
   * read together; every other tensor is still read one at a time straight into the module.
   */
  remap?: (dict: StateDict) => StateDict;
  /** The names (after prefix stripping and renaming) that `remap` needs. Default: all. */
  remapKeys?: (name: string) => boolean;
  /** How errors name the loader, e.g. `'loadClipVisionModel'`. */
  what: string;
}

/**
 * Reads the weights under `prefix` from a checkpoint and loads them, with PyTorch's strict
 * semantics (one error lists every missing key, unexpected key and shape mismatch; keys outside
 * the prefix are not read), into the module that `create` builds without initialisation
 * (`skipInit`: the weights come from the checkpoint), then freezes it. Headers are read and
 * checked against the module's shapes before any tensor is decoded; then tensors are read one
 * at a time, each straight into the module (peak memory: the model plus one tensor). On error
 * the module is disposed.
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
  const rename = options.rename ?? ((k: string) => k);
  const skip = (k: string) => ignore.some((p) => (typeof p === 'string' ? p === k : p.test(k)));
  const where = openCheckpoint(weights, { filter: (k) => k.startsWith(prefix) && !skip(k.slice(prefix.length)) });
  const names = new Map([...where.keys()].map((k) => [rename(k.slice(prefix.length)), k]));
  let module: M | undefined;
  let dict: StateDict = {};
  try {
    const params = [...where].reduce((n, [k, file]) => n + file.entry(k).shape.reduce((a, d) => a * d, 1), 0);
    checkBackendMemory(4 * params, `the tower (${(params / 1e6).toFixed(1)}M parameters as float32)`);
    reserveBackendMemory(4 * params);
    module = skipInit(create);
    const streamed = new Map(names);
    if (options.remap) {
      const remapKeys = options.remapKeys ?? (() => true);
      for (const [name, key] of names) {
        if (!remapKeys(name)) continue;
        dict[name] = where.get(key)!.readTensor(key);
        streamed.delete(name);
      }
      dict = options.remap(dict);
    }
    const shapes: Record<string, { shape: readonly number[]; dtype: tf.DataType }> = Object.fromEntries(
      [...streamed].map(([name, key]) => {
        const e = where.get(key)!.entry(key);
        return [name, { shape: e.shape, dtype: safetensorsTfDtype(e.dtype) }];
      }),
    );
    for (const [name, t] of Object.entries(dict)) shapes[name] = { shape: t.shape, dtype: t.dtype };
    // A remapped tensor is handed over once (the module disposes what it reads); the others are read from their file.
    const take = (name: string): tf.Tensor => {
      const t = dict[name]!;
      delete dict[name];
      return t;
    };
    const read = (name: string, transpose: boolean) =>
      name in dict ? take(name) : where.get(streamed.get(name)!)!.readTensor(streamed.get(name)!, { transpose });
    module.loadStateDictFrom({
      shapes,
      read: (name) => read(name, false),
      readTransposed: (name) => {
        if (!(name in dict)) return read(name, true);
        const t = take(name);
        const out = tf.transpose(t);
        t.dispose();
        return out;
      },
    });
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
  return openFile(weights, 'model.safetensors').names();
}
