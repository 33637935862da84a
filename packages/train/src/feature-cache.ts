import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, writeSafetensors } from '@vlm/core';

/**
 * What a cache of frozen features is keyed by: the encoder (name, checkpoint, the layer cut at)
 * and its preprocessing (resize, normalisation). Change either and the features are recomputed.
 */
export interface FeatureCacheKey {
  /** The encoder: e.g. `nsfwjs MobileNetV2 @ block_13_expand_relu`. */
  encoder: string;
  /** The preprocessing, as a string or any JSON-able object (key order does not matter). */
  preprocessing: string | object;
  /** What the data set is (a name and version), so two data sets do not share a cache. */
  data?: string;
}

/**
 * Where cached features persist between runs: bytes (a safetensors file) by an id derived
 * from the key. {@link MemoryFeatureStore} keeps them for the life of the page;
 * `SafetensorsFeatureStore` of `@vlm/train/node` writes files.
 */
export interface FeatureStore {
  /** The bytes saved under `id`, or `null`. */
  load(id: string): Promise<Uint8Array | null>;
  /** Saves `bytes` under `id` (atomically, replacing what was there). */
  save(id: string, bytes: Uint8Array): Promise<void>;
}

/**
 * A {@link FeatureStore} in memory.
 *
 * @example
 * ```ts
 * const store = new MemoryFeatureStore();
 * const cache = await FeatureCache.build({ key, size, encode, store });
 * ```
 */
export class MemoryFeatureStore implements FeatureStore {
  private readonly held = new Map<string, Uint8Array>();

  /** {@inheritDoc FeatureStore.load} */
  async load(id: string): Promise<Uint8Array | null> {
    return this.held.get(id)?.slice() ?? null;
  }

  /** {@inheritDoc FeatureStore.save} */
  async save(id: string, bytes: Uint8Array): Promise<void> {
    this.held.set(id, bytes.slice());
  }
}

/** Options of {@link FeatureCache.build}. */
export interface FeatureCacheBuildOptions {
  /** What the features depend on. */
  key: FeatureCacheKey;
  /** Number of examples. */
  size: number;
  /**
   * Runs the frozen encoder on examples `indices` and returns their features, `[indices.length, ...]`.
   * It runs inside a `tf.tidy` (intermediate tensors are freed); the cache takes the result.
   */
  encode: (indices: number[]) => tf.Tensor;
  /** Examples per `encode` call. Default: 16. */
  batchSize?: number;
  /** Where the features persist (loaded from it when the key matches, saved to it after encoding). */
  store?: FeatureStore;
  /** Called after each encoded batch with the examples done so far. */
  onProgress?: (done: number, size: number) => void;
}

const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(',')}]`
    : v !== null && typeof v === 'object'
      ? `{${Object.keys(v as object)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : JSON.stringify(v);

/**
 * The id a {@link FeatureCacheKey} is stored under: the encoder's name made file-safe, and a
 * 64-bit FNV-1a hash of the whole key in canonical JSON.
 *
 * @example
 * ```ts
 * featureCacheId({ encoder: 'mobilenet', preprocessing: { size: 224 } }); // 'mobilenet-3f1c…'
 * ```
 */
export function featureCacheId(key: FeatureCacheKey): string {
  const text = canonical({ encoder: key.encoder, preprocessing: key.preprocessing, data: key.data ?? null });
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  const stem = key.encoder.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 64) || 'features';
  return `${stem}-${h.toString(16).padStart(16, '0')}`;
}

/**
 * Features of a frozen encoder, computed once for a whole data set and kept (in memory, and in a
 * {@link FeatureStore} across runs), so bridge training never runs the encoder again. Example
 * `i`'s features are row `i` of {@link FeatureCache.features}.
 *
 * @example
 * ```ts
 * const cache = await FeatureCache.build({
 *   key: { encoder: 'nsfwjs MobileNetV2 @ out_relu', preprocessing: { size: 224, scale: '0..1' } },
 *   size: images.length,
 *   encode: (idx) => encoder.encode(preprocess(idx.map((i) => images[i]))),
 * });
 * const tokens = cache.gather([4, 2]); // [2, 49, 1280], no encoder run
 * ```
 */
export class FeatureCache {
  /** What the features depend on. */
  readonly key: FeatureCacheKey;
  /** The store id of the key. */
  readonly id: string;
  /** Whether the features came from the store (true) or were encoded now (false). */
  readonly fromStore: boolean;
  private tensor: tf.Tensor | null;

  private constructor(key: FeatureCacheKey, tensor: tf.Tensor, fromStore: boolean) {
    this.key = key;
    this.id = featureCacheId(key);
    this.tensor = tensor;
    this.fromStore = fromStore;
  }

  /**
   * Loads the features from `store` when it holds them under this key (same key, same number
   * of examples), else runs `encode` over the data set in batches and saves the result to
   * `store`.
   */
  static async build(options: FeatureCacheBuildOptions): Promise<FeatureCache> {
    const { key, size, store } = options;
    if (!(Number.isSafeInteger(size) && size > 0)) throw new Error(`FeatureCache.build: size must be an integer > 0, got ${size}`);
    const batchSize = options.batchSize ?? 16;
    if (!(Number.isSafeInteger(batchSize) && batchSize > 0)) throw new Error(`FeatureCache.build: batchSize must be an integer > 0, got ${batchSize}`);
    const id = featureCacheId(key);
    const keyText = canonical({ encoder: key.encoder, preprocessing: key.preprocessing, data: key.data ?? null });
    if (store) {
      const bytes = await store.load(id);
      if (bytes) {
        const { tensors, metadata } = readSafetensors(bytes, { source: `feature cache ${id}` });
        const t = tensors.features;
        for (const [k, other] of Object.entries(tensors)) if (k !== 'features') other.dispose();
        if (t && metadata.key === keyText && t.shape[0] === size) return new FeatureCache(key, t, true);
        t?.dispose(); // another key under the same id, or another size: recompute
      }
    }
    let data: Float32Array | null = null;
    let rowShape: number[] = [];
    for (let start = 0; start < size; start += batchSize) {
      const indices = Array.from({ length: Math.min(batchSize, size - start) }, (_, i) => start + i);
      const out = tf.tidy(() => options.encode(indices));
      try {
        if (out.rank < 1 || out.shape[0] !== indices.length) {
          throw new Error(`FeatureCache.build: encode(${indices.length} examples) returned shape [${out.shape}], expected [${indices.length}, ...]`);
        }
        if (!data) {
          rowShape = out.shape.slice(1);
          data = new Float32Array(size * out.size / indices.length);
        } else if (out.shape.slice(1).join() !== rowShape.join()) {
          throw new Error(`FeatureCache.build: encode returned rows of shape [${out.shape.slice(1)}], earlier ones were [${rowShape}]`);
        }
        const rowSize = out.size / indices.length;
        const f32 = out.dtype === 'float32' ? out : tf.cast(out, 'float32');
        data.set((await f32.data()) as Float32Array, start * rowSize);
        if (f32 !== out) f32.dispose();
      } finally {
        out.dispose();
      }
      options.onProgress?.(start + indices.length, size);
    }
    const features = tf.tensor(data!, [size, ...rowShape], 'float32');
    if (store) await store.save(id, writeSafetensors({ features }, { key: keyText, encoder: key.encoder }));
    return new FeatureCache(key, features, false);
  }

  /** All features, `[size, ...]` (owned by the cache: do not dispose). */
  get features(): tf.Tensor {
    if (!this.tensor) throw new Error('FeatureCache: used after dispose()');
    return this.tensor;
  }

  /** Number of examples. */
  get size(): number {
    return this.features.shape[0]!;
  }

  /** The features of examples `indices`, `[indices.length, ...]` (a new tensor). */
  gather(indices: number[]): tf.Tensor {
    const n = this.size;
    for (const i of indices) if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new Error(`FeatureCache.gather: index ${i} out of range [0, ${n})`);
    return tf.tidy(() => tf.gather(this.features, tf.tensor1d(indices, 'int32')));
  }

  /** Frees the features. */
  dispose(): void {
    this.tensor?.dispose();
    this.tensor = null;
  }
}
