import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '@vlm/core';
import {
  MAX_CHANNEL_VIEW,
  MultiViewVisionEncoder,
  NSFWJS_MOBILENET_V2_COLOUR_CUT,
  StandardizedVisionEncoder,
  boxBlurView,
  loadDecoderLM,
  loadNsfwjsMobileNetV2Encoder,
  loadTokenizer,
  preprocessImages,
  visionTokenStatistics,
  type CausalLM,
  type LMTokenizer,
  type VisionEncoder,
  type VisionTokenStatistics,
} from '@vlm/frozen-loaders';
import type { SceneImage } from '@vlm/shapeworld';
import { readShapeWorldLM, shapeWorldLMDir } from '@vlm/shapeworld/node';
import { FeatureCache } from '@vlm/train';
import { SafetensorsFeatureStore } from '@vlm/train/node';

/** Where the demo cuts nsfwjs' MobileNetV2 (shared with apps/web; see `NSFWJS_MOBILENET_V2_COLOUR_CUT` in @vlm/frozen-loaders). */
export const DEMO_ENCODER = NSFWJS_MOBILENET_V2_COLOUR_CUT;

/**
 * The views of each image the encoder sees, their tokens one after the other (49 + 49): a box
 * blur (colour without outlines) and the colour-blind max-channel view (outlines without colour),
 * so the bridges find colour and shape in separate tokens (the README has the measurements).
 */
export const DEMO_VIEWS = [boxBlurView(15), MAX_CHANNEL_VIEW] as const;
const viewNames = DEMO_VIEWS.map((v) => v.name).join(',');

/** The file in a run folder with the vision tokens' standardization (`mean`, `std`: `[width]`). */
export const STANDARDIZATION_FILE = 'vision-standardization.safetensors';

/** The frozen parts every pipeline of the demo shares. */
export interface FrozenModels {
  /** The raw encoder until {@link standardizeEncoder}, then the standardized one (what the bridges read). */
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
  const encoder = new MultiViewVisionEncoder(await loadNsfwjsMobileNetV2Encoder(DEMO_ENCODER), DEMO_VIEWS);
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

/**
 * Standardizes the encoder's tokens per channel with `statistics` (from the training images, or a
 * run folder's {@link STANDARDIZATION_FILE}): `frozen.encoder` becomes a
 * `StandardizedVisionEncoder` around the raw one. Returns it.
 */
export function standardizeEncoder(frozen: FrozenModels, statistics: VisionTokenStatistics): StandardizedVisionEncoder {
  if (frozen.encoder instanceof StandardizedVisionEncoder) throw new Error('standardizeEncoder: the encoder is already standardized');
  const enc = new StandardizedVisionEncoder(frozen.encoder, statistics);
  frozen.encoder = enc;
  return enc;
}

/**
 * The standardized encoder with its views side by side per position (`[N, 49, 2·192]`, what the
 * LLaVA-style MLP projector reads) and the view count for `viewsSideBySide` of cached features.
 * Shares the raw encoder with `standardized` (disposing it leaves that one intact).
 */
export function sideBySideEncoder(standardized: StandardizedVisionEncoder): { encoder: StandardizedVisionEncoder; views: number } {
  const multi = standardized.encoder;
  if (!(multi instanceof MultiViewVisionEncoder)) throw new Error(`sideBySideEncoder: expected a standardized MultiViewVisionEncoder, got ${multi.name}`);
  const side = new MultiViewVisionEncoder(multi.encoder, multi.views, { join: 'channels', ownsEncoder: false });
  const v = multi.views.length;
  // the same per-channel statistics, repeated for each view's channels
  const stats = tf.tidy(() => ({ mean: tf.tile(standardized.mean, [v]) as tf.Tensor1D, std: tf.tile(standardized.std, [v]) as tf.Tensor1D }));
  try {
    return { encoder: new StandardizedVisionEncoder(side, stats), views: v };
  } finally {
    tf.dispose([stats.mean, stats.std]);
  }
}

/** Per-channel statistics of the raw features of `indices` (the training images). */
export function trainingStatistics(rawFeatures: tf.Tensor3D, indices: readonly number[]): VisionTokenStatistics {
  const picked = tf.gather(rawFeatures, indices as number[]);
  try {
    return visionTokenStatistics(picked);
  } finally {
    picked.dispose();
  }
}

/** Writes the encoder's standardization into `dir/vision-standardization.safetensors` (with the cut in its metadata). */
export function writeStandardization(dir: string, enc: StandardizedVisionEncoder): string {
  const path = join(dir, STANDARDIZATION_FILE);
  writeFileSync(path, writeSafetensors({ mean: enc.mean, std: enc.std }, { encoder: enc.encoder.name, layer: DEMO_ENCODER.layer, pool: String(DEMO_ENCODER.pool), views: viewNames }));
  return path;
}

/** Reads a run folder's standardization (the caller disposes the tensors). */
export function readStandardization(dir: string): VisionTokenStatistics {
  const path = join(dir, STANDARDIZATION_FILE);
  if (!existsSync(path)) throw new Error(`no ${path}: the bridges of a run are trained on standardized vision tokens and need that run's statistics (run \`npm run demo\` again)`);
  const { tensors, metadata } = readSafetensors(new Uint8Array(readFileSync(path)));
  const { mean, std, ...rest } = tensors;
  tf.dispose(Object.values(rest));
  if (!mean || !std) throw new Error(`${path}: expected tensors 'mean' and 'std', got ${Object.keys(tensors).join(', ') || 'none'}`);
  if (metadata.layer !== DEMO_ENCODER.layer || metadata.pool !== String(DEMO_ENCODER.pool) || (metadata.views ?? 'image') !== viewNames) {
    tf.dispose([mean, std]);
    throw new Error(`${path}: made for the encoder cut at ${metadata.layer} (pool ${metadata.pool}, views ${metadata.views ?? 'image'}), this demo cuts at ${DEMO_ENCODER.layer} (pool ${DEMO_ENCODER.pool}, views ${viewNames}): run \`npm run demo\` again`);
  }
  return { mean: mean as tf.Tensor1D, std: std as tf.Tensor1D };
}
