/**
 * Node-only parts of `@vlm/shapeworld`: PNG files on disk, and the files of the world's frozen
 * language model committed in the package (`lm/`).
 *
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePng, encodePng } from './png';
import type { SceneImage } from './rasterise';

/** Writes an RGB image to `path` as PNG ({@link encodePng}). */
export function writePng(path: string, image: SceneImage): void {
  writeFileSync(path, encodePng(image));
}

/** Reads a PNG file into an RGB image ({@link decodePng}). */
export function readPng(path: string): SceneImage {
  return decodePng(new Uint8Array(readFileSync(path)));
}

/** The folder of the world's pretrained, frozen LM inside this package (a Hugging Face folder). */
export function shapeWorldLMDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'lm');
}

/** The files of a Hugging Face GPT-2 folder, read as `@vlm/frozen-loaders` takes them. */
export interface ShapeWorldLMFiles {
  /** The folder read. */
  dir: string;
  /** `config.json` text. */
  config: string;
  /** `model.safetensors` bytes. */
  weights: Uint8Array;
  /** `tokenizer.json` text. */
  tokenizer: string;
  /** `tokenizer_config.json` text. */
  tokenizerConfig: string;
}

/**
 * Reads the world's frozen LM (a 4-layer GPT-2 pretrained on the world's text by
 * `tools/shapeworld-lm`) from `dir` (default: the copy shipped in this package). Load it with
 * the same calls as any Hugging Face GPT-2.
 *
 * @example
 * ```ts
 * const files = readShapeWorldLM();
 * const lm = await loadDecoderLM({ config: files.config, weights: files.weights });
 * const tok = loadTokenizer(files.tokenizer, { tokenizerConfig: files.tokenizerConfig });
 * ```
 */
export function readShapeWorldLM(dir: string = shapeWorldLMDir()): ShapeWorldLMFiles {
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name));
    } catch (e) {
      throw new Error(`readShapeWorldLM: cannot read ${name} in ${dir} (${(e as Error).message})`);
    }
  };
  return {
    dir,
    config: read('config.json').toString('utf8'),
    weights: new Uint8Array(read('model.safetensors')),
    tokenizer: read('tokenizer.json').toString('utf8'),
    tokenizerConfig: read('tokenizer_config.json').toString('utf8'),
  };
}
