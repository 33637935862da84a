/**
 * Node only: the `@vlm/pipelines` models from and to folders on disk.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadTokenizer, type LMTokenizer } from '@vlm/frozen-loaders';
import { readHfCheckpointDir } from '@vlm/frozen-loaders/node';
import { Blip2 } from '../blip2';
import type { BridgeKind, SavedBridge } from '../bridge-checkpoint';
import { Flamingo } from '../flamingo';

async function tokenizerIn(dir: string, addSpecialTokens?: string[]): Promise<LMTokenizer | undefined> {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) return undefined;
  return loadTokenizer(JSON.parse(await readFile(path, 'utf8')), { addSpecialTokens });
}

/**
 * Writes a saved bridge (a model's `saveBridge()`) into `dir` as `<name>.safetensors` (PyTorch
 * names) and `<name>.json` (`{ kind, config }`). Returns the two paths.
 *
 * @example
 * ```ts
 * await writeBridge('demo-out', flamingo.saveBridge()); // demo-out/flamingo.safetensors, demo-out/flamingo.json
 * ```
 */
export async function writeBridge(dir: string, saved: SavedBridge, name: string = saved.kind): Promise<{
  /** The safetensors file. */
  weights: string;
  /** The JSON config. */
  config: string;
}> {
  await mkdir(dir, { recursive: true });
  const weights = join(dir, `${name}.safetensors`);
  const config = join(dir, `${name}.json`);
  await writeFile(weights, saved.weights);
  await writeFile(config, `${JSON.stringify({ kind: saved.kind, config: saved.config }, null, 2)}\n`);
  return { weights, config };
}

/**
 * Reads a bridge written by {@link writeBridge}; missing files and a wrong `kind` throw, naming them.
 *
 * @example
 * ```ts
 * flamingo.loadBridge(await readBridge('demo-out', 'flamingo'));
 * ```
 */
export async function readBridge(dir: string, name: string, kind: BridgeKind = name as BridgeKind): Promise<SavedBridge> {
  const weights = join(dir, `${name}.safetensors`);
  const config = join(dir, `${name}.json`);
  for (const p of [weights, config]) if (!existsSync(p)) throw new Error(`readBridge: no ${p}`);
  const meta = JSON.parse(await readFile(config, 'utf8')) as { kind?: string; config?: unknown };
  if (meta.kind !== kind) throw new Error(`readBridge: ${config} holds a '${String(meta.kind)}' bridge, expected '${kind}'`);
  return { kind, config: meta.config, weights: new Uint8Array(await readFile(weights)) };
}

/**
 * Loads an OpenFlamingo model folder: `config.json` (an `OpenFlamingoConfig`),
 * `model.safetensors` (the whole `Flamingo.state_dict()`), and `tokenizer.json` when present
 * (`<image>` and `<|endofchunk|>` are added as special tokens if it lacks them).
 *
 * @example
 * ```ts
 * const flamingo = await loadOpenFlamingo('./tiny-openflamingo');
 * ```
 */
export async function loadOpenFlamingo(dir: string): Promise<Flamingo> {
  const configPath = join(dir, 'config.json');
  const weightsPath = join(dir, 'model.safetensors');
  for (const p of [configPath, weightsPath]) if (!existsSync(p)) throw new Error(`loadOpenFlamingo: no ${p}`);
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  const tokenizer = await tokenizerIn(dir, ['<image>', '<|endofchunk|>']);
  return Flamingo.fromOpenFlamingo({ config, weights: new Uint8Array(await readFile(weightsPath)) }, { tokenizer });
}

/**
 * Loads a Hugging Face `Blip2ForConditionalGeneration` folder (`config.json`, `model.safetensors`
 * or sharded, `tokenizer.json` when present).
 *
 * @example
 * ```ts
 * const blip2 = await loadBlip2('./blip2-opt-2.7b');
 * blip2.generate({ images: [[image]], prompt: 'Question: what is this? Answer:' }).text;
 * ```
 */
export async function loadBlip2(dir: string): Promise<Blip2> {
  const checkpoint = await readHfCheckpointDir(dir);
  return Blip2.fromHuggingFace(checkpoint, { tokenizer: await tokenizerIn(dir) });
}
