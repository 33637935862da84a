import type { SafetensorsByteSource } from '@vlm/core';
import type { HfCheckpoint } from './checkpoint';

type NodeFs = typeof import('node:fs');

/** Reads beyond this many bytes at once are split (Node refuses single reads of 2 GiB or more). */
const MAX_READ = 1 << 30;

/**
 * A file read by positional reads: each call opens the file, reads `into.length` bytes from
 * `position` (in parts of at most 1 GiB) and closes it, so nothing is held open between reads
 * and files of any size (past 2 GiB, where `fs.readFile` refuses) are read a tensor at a time.
 */
function fileByteSource(fs: NodeFs, path: string): SafetensorsByteSource {
  const byteLength = fs.statSync(path).size;
  return {
    byteLength,
    readInto(position: number, into: Uint8Array): void {
      if (position + into.length > byteLength) {
        throw new Error(`${path}: expected bytes ${position}..${position + into.length}, but the file has ${byteLength}`);
      }
      const fd = fs.openSync(path, 'r');
      try {
        for (let done = 0; done < into.length; ) {
          const n = fs.readSync(fd, into, done, Math.min(into.length - done, MAX_READ), position + done);
          if (n === 0) throw new Error(`${path}: ended at byte ${position + done}, expected ${byteLength} bytes (did the file change?)`);
          done += n;
        }
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

/**
 * Node only: opens a Hugging Face model folder (as `save_pretrained` or the hub download writes
 * it): `config.json` plus `model.safetensors`, or `model.safetensors.index.json` and every shard
 * it names. The weight files are not read here: each becomes a byte source that the loaders
 * read by positional reads, the header first and then only the tensors they need, each straight
 * into its tensor — so memory stays bounded and files over 2 GiB work. Missing files throw,
 * naming them. `node:fs` is imported on first call, so browser bundles that never call this
 * are unaffected.
 *
 * @example
 * ```ts
 * const clip = loadClipVisionModel(await readHfCheckpointDir('./clip-vit-large-patch14'), { layer: -2 });
 * ```
 */
export async function readHfCheckpointDir(dir: string): Promise<HfCheckpoint> {
  const fs = await import('node:fs');
  const { join } = await import('node:path');
  const exists = (p: string) => fs.promises.access(p).then(() => true, () => false);
  const configPath = join(dir, 'config.json');
  if (!(await exists(configPath))) throw new Error(`readHfCheckpointDir: no config.json in ${dir}`);
  const config = await fs.promises.readFile(configPath, 'utf8');
  const single = join(dir, 'model.safetensors');
  if (await exists(single)) return { config, weights: fileByteSource(fs, single) };
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!(await exists(indexPath))) throw new Error(`readHfCheckpointDir: neither model.safetensors nor model.safetensors.index.json in ${dir}`);
  const index = await fs.promises.readFile(indexPath, 'utf8');
  let names: string[];
  try {
    names = [...new Set(Object.values((JSON.parse(index) as { weight_map: Record<string, string> }).weight_map))];
  } catch (e) {
    throw new Error(`readHfCheckpointDir: ${indexPath} has no valid weight_map: ${(e as Error).message}`);
  }
  const shards: Record<string, SafetensorsByteSource> = {};
  const missing: string[] = [];
  for (const name of names) {
    const p = join(dir, name);
    if (await exists(p)) shards[name] = fileByteSource(fs, p);
    else missing.push(name);
  }
  if (missing.length) throw new Error(`readHfCheckpointDir: shard file(s) named by the index are missing in ${dir}: ${missing.join(', ')}`);
  return { config, weights: { index, shards } };
}
