import { SafetensorsFile, type SafetensorsByteSource, type SafetensorsHeader } from '@vlm/core';
import { configObject } from './config-reader';

/** One safetensors file: its bytes, or a byte source that reads it in parts (see `readHfCheckpointDir`). */
export type WeightFileBytes = Uint8Array | ArrayBuffer | SafetensorsByteSource;

/**
 * The weight files of a checkpoint: one `model.safetensors`, a list of shards, shards by file
 * name (required to match a `model.safetensors.index.json`'s `weight_map`), or
 * `{ index, shards }` as the vision loaders' `readHfCheckpointDir` returns them.
 */
export type WeightFiles =
  | WeightFileBytes
  | WeightFileBytes[]
  | Record<string, WeightFileBytes>
  | {
      /** `model.safetensors.index.json` (object, text or bytes), or `undefined` for none. */
      index: unknown;
      /** The shard files' bytes, by file name. */
      shards: Record<string, WeightFileBytes>;
    };

/** One validated shard: its name, bytes and parsed header. */
export interface CheckedShard {
  /** File name: as given or as the index names it; `model.safetensors` or `shard <i>` for unnamed files. */
  name: string;
  /** The file, opened by its header: read each tensor with `file.readTensor(key)`. */
  file: SafetensorsFile;
  /** The parsed safetensors header: each tensor's dtype, shape and data offsets, plus `__metadata__`. */
  header: SafetensorsHeader;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, BOOL: 1 };

const isBytes = (b: unknown): b is WeightFileBytes =>
  b instanceof Uint8Array || b instanceof ArrayBuffer || (typeof b === 'object' && b !== null && typeof (b as SafetensorsByteSource).readInto === 'function');

/**
 * Validates the weight files of a (possibly sharded) checkpoint without reading tensor data:
 * every header is parsed (a truncated file throws, naming it); with an index, each
 * `weight_map` entry must be in the shard it names, every shard it names must be given, no
 * shard may hold keys the index does not assign to it, and `metadata.total_size` must equal
 * the tensors' byte count. Without an index, a key may appear in one shard only.
 *
 * @example
 * ```ts
 * const shards = checkShards(
 *   { 'model-00001-of-00002.safetensors': a, 'model-00002-of-00002.safetensors': b },
 *   readFileSync('model.safetensors.index.json', 'utf8'),
 * );
 * shards.map((s) => s.name); // ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']
 * ```
 */
export function checkShards(files: WeightFiles, index?: unknown): CheckedShard[] {
  let weights = files as WeightFileBytes | WeightFileBytes[] | Record<string, WeightFileBytes>;
  const bundled = files as { index?: unknown; shards?: unknown };
  if (!isBytes(files) && !Array.isArray(files) && isShardRecord(bundled.shards)) {
    weights = bundled.shards;
    index = index ?? bundled.index;
  }
  const weightMap = index === undefined ? undefined : readWeightMap(index);
  let named: Array<[string, WeightFileBytes]>;
  if (isBytes(weights)) {
    named = [['model.safetensors', weights]];
  } else if (Array.isArray(weights)) {
    const names = weightMap ? [...new Set(Object.values(weightMap.map))].sort() : weights.map((_, i) => (weights.length === 1 ? 'model.safetensors' : `shard ${i}`));
    if (weightMap && names.length !== weights.length) {
      throw new Error(`model.safetensors.index.json names ${names.length} shard(s) (${names.join(', ')}), but ${weights.length} weight file(s) were given`);
    }
    named = weights.map((w, i) => [names[i]!, w]);
  } else {
    named = Object.entries(weights);
  }
  if (named.length === 0) throw new Error('no weight files given');
  const shards = named.map(([name, bytes]) => {
    const file = SafetensorsFile.open(bytes, { source: name });
    return { name, file, header: file.header };
  });

  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const s of shards) {
    for (const key of Object.keys(s.header.entries)) {
      const other = seen.get(key);
      if (other !== undefined) problems.push(`tensor '${key}' is in both ${other} and ${s.name}`);
      seen.set(key, s.name);
    }
  }
  if (weightMap) {
    const given = new Set(shards.map((s) => s.name));
    for (const file of new Set(Object.values(weightMap.map))) {
      if (!given.has(file)) problems.push(`shard ${file} (named by the index) was not given`);
    }
    for (const [key, file] of Object.entries(weightMap.map)) {
      const at = seen.get(key);
      if (at === undefined && given.has(file)) problems.push(`tensor '${key}': the index puts it in ${file}, which does not contain it (truncated or wrong shard?)`);
      else if (at !== undefined && at !== file) problems.push(`tensor '${key}': the index puts it in ${file}, found in ${at}`);
    }
    for (const [key, file] of seen) {
      if (!(key in weightMap.map)) problems.push(`tensor '${key}' in ${file} is not in the index's weight_map`);
    }
    if (weightMap.totalSize !== undefined && problems.length === 0) {
      const total = shards.reduce(
        (sum, s) => sum + Object.values(s.header.entries).reduce((a, e) => a + e.shape.reduce((p, d) => p * d, 1) * DTYPE_BYTES[e.dtype]!, 0),
        0,
      );
      if (total !== weightMap.totalSize) problems.push(`metadata.total_size is ${weightMap.totalSize} bytes, but the shards hold ${total} bytes of tensors`);
    }
  }
  if (problems.length) throw new Error(`sharded checkpoint is inconsistent:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return shards;
}

function isShardRecord(v: unknown): v is Record<string, WeightFileBytes> {
  return typeof v === 'object' && v !== null && !isBytes(v) && !Array.isArray(v);
}

function readWeightMap(index: unknown): { map: Record<string, string>; totalSize?: number } {
  let json: Record<string, unknown>;
  try {
    json = configObject(index);
  } catch (e) {
    throw new Error(`model.safetensors.index.json: ${(e as Error).message.replace('config.json', 'the index')}`);
  }
  const map = json.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new Error('model.safetensors.index.json: field \'weight_map\' must be an object of tensor name → shard file name');
  }
  const meta = json.metadata as Record<string, unknown> | undefined;
  const totalSize = meta && typeof meta.total_size === 'number' ? meta.total_size : undefined;
  return { map: map as Record<string, string>, totalSize };
}
