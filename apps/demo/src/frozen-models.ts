import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadDecoderLM, loadNsfwjsMobileNetV2Encoder, loadTokenizer, preprocessImages, type CausalLM, type LMTokenizer, type VisionEncoder } from '@vlm/frozen-loaders';
import type { SceneImage } from '@vlm/shapeworld';
import { readShapeWorldLM, shapeWorldLMDir } from '@vlm/shapeworld/node';
import { FeatureCache } from '@vlm/train';
import { SafetensorsFeatureStore } from '@vlm/train/node';

/** The frozen parts every pipeline of the demo shares. */
export interface FrozenModels {
  encoder: VisionEncoder;
  lm: CausalLM;
  tokenizer: LMTokenizer;
  /** Where the LM came from, for the report. */
  lmSource: string;
  imageId: number;
  eocId: number;
  bosId: number;
  padId: number;
}

/**
 * The embedded encoder (nsfwjs' pretrained MobileNetV2, offline) and the world's frozen LM
 * (`@vlm/shapeworld`'s pretrained GPT-2 folder, loaded like any Hugging Face GPT-2).
 */
export async function loadFrozenModels(): Promise<FrozenModels> {
  const encoder = await loadNsfwjsMobileNetV2Encoder();
  const dir = shapeWorldLMDir();
  if (!existsSync(join(dir, 'model.safetensors'))) {
    throw new Error(`the world's pretrained LM is missing: expected ${join(dir, 'model.safetensors')} (shipped in @vlm/shapeworld; \`pnpm shapeworld-lm\` regenerates it)`);
  }
  const files = readShapeWorldLM(dir);
  const lm = await loadDecoderLM({ config: files.config, weights: files.weights });
  const tokenizer = loadTokenizer(files.tokenizer, { tokenizerConfig: files.tokenizerConfig });
  const lmSource = `the world's pretrained GPT-2 (${dir})`;
  const id = (t: string) => {
    const v = tokenizer.tokenToId(t);
    if (v === undefined) throw new Error(`the LM's tokenizer has no '${t}' token`);
    return v;
  };
  return { encoder, lm, tokenizer, lmSource, imageId: id('<image>'), eocId: id('<|endofchunk|>'), bosId: id('<s>'), padId: id('<pad>') };
}

/**
 * The frozen encoder over every image of the run, once (vision tokens `[N, tokens, width]`),
 * through @vlm/train's feature cache: kept in `dir` as safetensors, keyed by the encoder, its
 * preprocessing and the data, so a rerun (`--resume`, `caption` after a run) does not encode again.
 */
export async function cachedFeatures(encoder: VisionEncoder, images: readonly SceneImage[], data: string, dir: string): Promise<FeatureCache> {
  return FeatureCache.build({
    key: { encoder: encoder.name, preprocessing: JSON.parse(JSON.stringify(encoder.preprocessing)) as Record<string, unknown>, data },
    size: images.length,
    batchSize: 32,
    encode: (indices) => tf.tidy(() => encoder.encode(preprocessImages(indices.map((i) => images[i]!), encoder.preprocessing))),
    store: new SafetensorsFeatureStore(dir),
  });
}
