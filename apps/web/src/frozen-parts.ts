// The frozen parts and the trained bridge, all fetched from the page's own origin: nsfwjs'
// MobileNetV2 (bundled by nsfwjs as JS chunks), the world's frozen GPT-2 (the folder committed in
// @vlm/shapeworld), and the Flamingo bridge trained by the demo (public/bridges/).
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors } from '@vlm/core';
import { MultiViewVisionEncoder, NSFWJS_MOBILENET_V2_COLOUR_CUT, StandardizedVisionEncoder, imageViewsNamed, loadDecoderLM, loadNsfwjsMobileNetV2Encoder, loadTokenizer, preprocessImages, visionTokenStatistics, type CausalLM, type ImageInput, type LMTokenizer, type VisionEncoder } from '@vlm/frozen-loaders';
import type { FlamingoBridgeConfig, SavedBridge } from '@vlm/pipelines';
import lmConfig from '../../../packages/shapeworld/lm/config.json?raw';
import lmTokenizer from '../../../packages/shapeworld/lm/tokenizer.json?raw';
import lmTokenizerConfig from '../../../packages/shapeworld/lm/tokenizer_config.json?raw';
import lmWeightsUrl from '../../../packages/shapeworld/lm/model.safetensors?url';

/** Where the page finds its trained bridge and the encoder's standardization (written by `npm run demo`). */
export const BRIDGE_DIR = './bridges/';


export interface FrozenParts {
  /** The frozen encoder, standardized per channel with the training images' statistics. */
  encoder: VisionEncoder;
  lm: CausalLM;
  tokenizer: LMTokenizer;
  imageId: number;
  eocId: number;
  padId: number;
  /** Where the standardization came from. */
  standardization: string;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function fetchOptional(url: string): Promise<Uint8Array | null> {
  const res = await fetch(url);
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('text/html')) return null; // a dev server's index.html fallback
  return new Uint8Array(await res.arrayBuffer());
}

/** The trained Flamingo bridge shipped with the page, or null when there is none. */
export async function fetchTrainedBridge(): Promise<SavedBridge<FlamingoBridgeConfig> | null> {
  const config = await fetchOptional(`${BRIDGE_DIR}flamingo.json`);
  const weights = await fetchOptional(`${BRIDGE_DIR}flamingo.safetensors`);
  if (!config || !weights) return null;
  const meta = JSON.parse(new TextDecoder().decode(config)) as { kind: string; config: FlamingoBridgeConfig };
  if (meta.kind !== 'flamingo') throw new Error(`${BRIDGE_DIR}flamingo.json: expected a 'flamingo' bridge, got '${meta.kind}'`);
  return { kind: 'flamingo', config: meta.config, weights };
}

/**
 * Loads the encoder and the LM. The standardization statistics come from
 * `bridges/vision-standardization.safetensors` (the demo's, so the shipped bridge sees what it was
 * trained on); without that file they are computed here from `statsImages()`.
 */
export async function loadFrozenParts(statsImages: () => ImageInput[], log: (s: string) => void): Promise<FrozenParts> {
  log('loading the MobileNetV2 embedded in nsfwjs…');
  let raw: VisionEncoder = await loadNsfwjsMobileNetV2Encoder(NSFWJS_MOBILENET_V2_COLOUR_CUT);
  let mean: tf.Tensor1D;
  let std: tf.Tensor1D;
  let standardization: string;
  const stats = await fetchOptional(`${BRIDGE_DIR}vision-standardization.safetensors`);
  if (stats) {
    const { tensors: t, metadata } = readSafetensors(stats, { source: 'vision-standardization.safetensors' });
    if (!t.mean || !t.std) throw new Error(`vision-standardization.safetensors: expected tensors 'mean' and 'std', got ${Object.keys(t).join(', ')}`);
    // a bridge trained on several views of each image (the demo's: the image and its max-channel view) sees them here too
    if (metadata.views && metadata.views !== 'image') raw = new MultiViewVisionEncoder(raw, imageViewsNamed(metadata.views.split(',')));
    mean = t.mean as tf.Tensor1D;
    std = t.std as tf.Tensor1D;
    standardization = 'statistics of the shipped bridge\'s training images';
  } else {
    log('computing the encoder\'s per-channel statistics on world scenes…');
    const images = statsImages();
    const chunks: tf.Tensor3D[] = [];
    for (let i = 0; i < images.length; i += 8) {
      chunks.push(tf.tidy(() => raw.encode(preprocessImages(images.slice(i, i + 8), raw.preprocessing))));
      await chunks[chunks.length - 1]!.data(); // one chunk at a time on the GPU
    }
    const tokens = tf.concat(chunks);
    ({ mean, std } = visionTokenStatistics(tokens));
    tokens.dispose();
    tf.dispose(chunks);
    standardization = `statistics of ${images.length} world scenes computed in the page`;
  }
  const encoder = new StandardizedVisionEncoder(raw, { mean, std });
  tf.dispose([mean, std]);
  log('loading the world\'s frozen GPT-2…');
  const lm = await loadDecoderLM({ config: lmConfig, weights: await fetchBytes(lmWeightsUrl) });
  const tokenizer = loadTokenizer(lmTokenizer, { tokenizerConfig: lmTokenizerConfig });
  const id = (t: string) => {
    const v = tokenizer.tokenToId(t);
    if (v === undefined) throw new Error(`the LM's tokenizer has no '${t}' token`);
    return v;
  };
  return { encoder, lm, tokenizer, imageId: id('<image>'), eocId: id('<|endofchunk|>'), padId: id('<pad>'), standardization };
}
