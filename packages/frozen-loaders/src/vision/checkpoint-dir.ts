import type { HfCheckpoint } from './checkpoint';

/**
 * Node only: reads a Hugging Face model folder (as `save_pretrained` or the hub download writes
 * it): `config.json` plus `model.safetensors`, or `model.safetensors.index.json` and every shard
 * it names. Missing files throw, naming them. `node:fs` is imported on first call, so browser
 * bundles that never call this are unaffected.
 *
 * @example
 * ```ts
 * const clip = loadClipVisionModel(await readHfCheckpointDir('./clip-vit-large-patch14'), { layer: -2 });
 * ```
 */
export async function readHfCheckpointDir(dir: string): Promise<HfCheckpoint> {
  const { readFile, access } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const exists = (p: string) => access(p).then(() => true, () => false);
  const configPath = join(dir, 'config.json');
  if (!(await exists(configPath))) throw new Error(`readHfCheckpointDir: no config.json in ${dir}`);
  const config = await readFile(configPath, 'utf8');
  const single = join(dir, 'model.safetensors');
  if (await exists(single)) return { config, weights: new Uint8Array(await readFile(single)) };
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!(await exists(indexPath))) throw new Error(`readHfCheckpointDir: neither model.safetensors nor model.safetensors.index.json in ${dir}`);
  const index = await readFile(indexPath, 'utf8');
  let names: string[];
  try {
    names = [...new Set(Object.values((JSON.parse(index) as { weight_map: Record<string, string> }).weight_map))];
  } catch (e) {
    throw new Error(`readHfCheckpointDir: ${indexPath} has no valid weight_map: ${(e as Error).message}`);
  }
  const shards: Record<string, Uint8Array> = {};
  const missing: string[] = [];
  for (const name of names) {
    const p = join(dir, name);
    if (await exists(p)) shards[name] = new Uint8Array(await readFile(p));
    else missing.push(name);
  }
  if (missing.length) throw new Error(`readHfCheckpointDir: shard file(s) named by the index are missing in ${dir}: ${missing.join(', ')}`);
  return { config, weights: { index, shards } };
}
