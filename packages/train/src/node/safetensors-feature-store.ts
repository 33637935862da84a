import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FeatureStore } from '../feature-cache';
import { writeFileAtomic } from './atomic-file';

/**
 * A {@link FeatureStore} on disk: each cache is `<dir>/<id>.safetensors` (a `features` tensor
 * and the key in the metadata), written atomically. A later run with the same key loads it
 * instead of running the encoder.
 *
 * @example
 * ```ts
 * import { SafetensorsFeatureStore } from '@vlm/train/node';
 * const cache = await FeatureCache.build({ key, size, encode, store: new SafetensorsFeatureStore('.cache/features') });
 * ```
 */
export class SafetensorsFeatureStore implements FeatureStore {
  /** The folder. */
  readonly dir: string;

  /** @param dir the folder (created on first save). */
  constructor(dir: string) {
    this.dir = dir;
  }

  /** The file of cache `id`. */
  pathOf(id: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new Error(`SafetensorsFeatureStore: id '${id}' is not a file-safe name`);
    return join(this.dir, `${id}.safetensors`);
  }

  /** The bytes of `<dir>/<id>.safetensors`, or `null` when there is no such file. */
  async load(id: string): Promise<Uint8Array | null> {
    const path = this.pathOf(id);
    if (!existsSync(path)) return null;
    const b = readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Writes `<dir>/<id>.safetensors` atomically. */
  async save(id: string, bytes: Uint8Array): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(this.pathOf(id), bytes);
  }
}
