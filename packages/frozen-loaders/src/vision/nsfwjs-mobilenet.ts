import type * as tfl from '@tensorflow/tfjs-layers';
import { LayersModelEncoder } from './layers-model-encoder';
import { mobileNetPreprocessing } from './preprocess';

/** Options of {@link loadNsfwjsMobileNetV2Encoder}. */
export interface NsfwjsMobileNetV2Options {
  /**
   * Side of the average pooling of the feature map before it becomes tokens: the default `2`
   * turns the 14×14 map of `block_13_expand_relu` into 7×7 = 49 tokens (`1` keeps 196); `4`
   * turns the 28×28 map of `block_6_expand_relu` into 49 tokens.
   */
  pool?: number;
  /** Cut at another layer of the MobileNetV2 (e.g. `'block_6_expand_relu'`, `'out_relu'`). Default: `'block_13_expand_relu'`. */
  layer?: string;
}

/** The layer the default encoder cuts at: 14×14×576, probed as the best colour/shape/position trade-off. */
export const NSFWJS_MOBILENET_V2_LAYER = 'block_13_expand_relu';

/**
 * A cut of the embedded MobileNetV2 that keeps colour, for {@link loadNsfwjsMobileNetV2Encoder}:
 * `block_6_expand_relu` (28×28×192) average-pooled 4×4 to 7×7 = 49 tokens × 192. What the
 * apps' world bridges read (`apps/demo`, `apps/web`). Measured on `@vlm/shapeworld`'s
 * compositional split (colour–shape pairs never seen in training; a Perceiver Resampler + linear
 * head trained on 1,000 scenes): colour 99% / shape 93% held out, against 70% / 96% at the
 * default `block_13_expand_relu`, whose colour does not carry to unseen pairs.
 *
 * @example
 * ```ts
 * const enc = await loadNsfwjsMobileNetV2Encoder(NSFWJS_MOBILENET_V2_COLOUR_CUT);
 * enc.encode(pixels).shape; // [1, 49, 192]
 * ```
 */
export const NSFWJS_MOBILENET_V2_COLOUR_CUT: Readonly<Required<NsfwjsMobileNetV2Options>> = Object.freeze({ layer: 'block_6_expand_relu', pool: 4 });

/**
 * The embedded default vision encoder: the pretrained MobileNetV2 (MIT) that the npm package
 * `nsfwjs` ships inside itself, loaded offline (`load('MobileNetV2')` builds a LayersModel from
 * its bundled shards), cut at `block_13_expand_relu` (14×14×576) and 2×2 average-pooled to
 * 7×7 = 49 tokens of 576 (or 196 unpooled); frozen. Input: 224×224 NHWC in [0, 1]
 * ({@link mobileNetPreprocessing}, as nsfwjs). Its batch norms run folded into the convolutions
 * ({@link LayersModelEncoderOptions.foldBatchNorm}): at batch 32 on the wasm backend (one thread,
 * Node 20, 2-core machine) about 20 ms per image at `block_13_expand_relu` (47 ms unfolded) and
 * 12 ms at {@link NSFWJS_MOBILENET_V2_COLOUR_CUT} (34 ms unfolded).
 *
 * `nsfwjs` is an optional peer dependency (it pulls in the `@tensorflow/tfjs` umbrella): install
 * it to use this loader. It must resolve to the same `@tensorflow/tfjs-core` as this package.
 *
 * @example
 * ```ts
 * const enc = await loadNsfwjsMobileNetV2Encoder();      // 49 tokens
 * const pixels = preprocessImages([await decodeImage(bytes)], enc.preprocessing); // [1, 224, 224, 3]
 * enc.encode(pixels).shape; // [1, 49, 576]
 * ```
 */
export async function loadNsfwjsMobileNetV2Encoder(options: NsfwjsMobileNetV2Options = {}): Promise<LayersModelEncoder> {
  type Nsfwjs = { load(name: string): Promise<{ model: unknown; normalizationOffset?: { dispose(): void } }> };
  let nsfwjs: Nsfwjs;
  try {
    const mod = (await import('nsfwjs')) as unknown as Nsfwjs & { default?: Nsfwjs };
    nsfwjs = typeof mod.load === 'function' ? mod : mod.default!;
  } catch (e) {
    throw new Error(`loadNsfwjsMobileNetV2Encoder: could not import 'nsfwjs' (an optional peer dependency: npm install nsfwjs@^4.4.0): ${(e as Error).message}`);
  }
  const loaded = await nsfwjs.load('MobileNetV2');
  // Only the network is used (preprocessing is ours): free the scalar nsfwjs keeps for its own.
  loaded.normalizationOffset?.dispose();
  const model = loaded.model as tfl.LayersModel;
  if (typeof (model as { getLayer?: unknown }).getLayer !== 'function') {
    throw new Error("loadNsfwjsMobileNetV2Encoder: nsfwjs' MobileNetV2 did not load as a LayersModel");
  }
  return new LayersModelEncoder(model, {
    layer: options.layer ?? NSFWJS_MOBILENET_V2_LAYER,
    pool: options.pool ?? 2,
    preprocessing: mobileNetPreprocessing(224),
  });
}
