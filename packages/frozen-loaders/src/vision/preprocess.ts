import * as tf from '@tensorflow/tfjs-core';
import { readImageSource, type CanvasLike, type DrawableImage, type RawImage } from './image-decode';
import type { ImageLayout } from './vision-encoder';

/** An RGB triple (per-channel mean or std). */
export type Rgb = readonly [number, number, number];

/**
 * How images become an encoder's input: resize (bilinear), center-crop, rescale, normalise with
 * the encoder's mean and std, and lay out as NCHW or NHWC.
 */
export interface ImagePreprocessing {
  /**
   * `{ shortestEdge }` scales the short side to it keeping the aspect ratio (the long side is
   * `floor(shortestEdge · long / short)`, as Hugging Face); `{ height, width }` resizes to exactly
   * that; `null` keeps the size.
   */
  resize:
    | {
        /** Target length of the shorter side in pixels (HF `size.shortest_edge`, or a bare number `size`). */
        shortestEdge: number;
      }
    | {
        /** Output height in pixels (HF `size.height`). */
        height: number;
        /** Output width in pixels (HF `size.width`). */
        width: number;
      }
    | null;
  /** Center crop to this size after resizing (offsets `floor((size - crop) / 2)`), or `null`. */
  crop: {
    /** Crop height in pixels (from HF `crop_size`). */
    height: number;
    /** Crop width in pixels (from HF `crop_size`). */
    width: number;
  } | null;
  /**
   * Bilinear sampling grid: `'half-pixel'` (PIL / torchvision / HF pixel centers) or
   * `'align-corners'` (what nsfwjs uses).
   */
  resample: 'half-pixel' | 'align-corners';
  /** Multiplies 0–255 pixel values first: `1/255` gives [0, 1]. */
  rescale: number;
  /** Subtracted per channel after rescaling. */
  mean: Rgb;
  /** Divides per channel after subtracting the mean. */
  std: Rgb;
  /** Output layout. */
  layout: ImageLayout;
}

/** OpenAI CLIP's mean (also BLIP-2's and OpenFlamingo's). */
export const CLIP_MEAN: Rgb = [0.48145466, 0.4578275, 0.40821073];
/** OpenAI CLIP's std (also BLIP-2's and OpenFlamingo's). */
export const CLIP_STD: Rgb = [0.26862954, 0.26130258, 0.27577711];

/**
 * CLIP's preprocessing (`CLIPImageProcessor`, open_clip's transform): shortest edge to `size`,
 * center crop `size×size`, `/255`, CLIP mean/std, NCHW. HF resizes with bicubic filtering; this
 * uses bilinear, which moves pixel values slightly (not a golden-level match for real photos).
 *
 * @example
 * ```ts
 * const pixels = preprocessImages([await decodeImage(bytes)], clipPreprocessing(224));
 * pixels.shape; // [1, 3, 224, 224]
 * ```
 */
export function clipPreprocessing(size = 224): ImagePreprocessing {
  return {
    resize: { shortestEdge: size },
    crop: { height: size, width: size },
    resample: 'half-pixel',
    rescale: 1 / 255,
    mean: CLIP_MEAN,
    std: CLIP_STD,
    layout: 'NCHW',
  };
}

/**
 * BLIP-2's preprocessing (`BlipImageProcessor`): resize to exactly `size×size` (no crop), `/255`,
 * CLIP mean/std, NCHW.
 *
 * @example
 * ```ts
 * preprocessImages([img], blip2Preprocessing(224)).shape; // [1, 3, 224, 224]
 * ```
 */
export function blip2Preprocessing(size = 224): ImagePreprocessing {
  return { ...clipPreprocessing(size), resize: { height: size, width: size }, crop: null };
}

/**
 * The MobileNetV2 preprocessing of nsfwjs: resize to `size×size` with `alignCorners` (no crop),
 * scale to [0, 1] (mean 0, std 1), NHWC. Keras' usual MobileNet [-1, 1] scaling would be
 * `mean [0.5, 0.5, 0.5], std [0.5, 0.5, 0.5]`; nsfwjs' weights expect [0, 1].
 *
 * @example
 * ```ts
 * preprocessImages([img], mobileNetPreprocessing()).shape; // [1, 224, 224, 3]
 * ```
 */
export function mobileNetPreprocessing(size = 224): ImagePreprocessing {
  return {
    resize: { height: size, width: size },
    crop: null,
    resample: 'align-corners',
    rescale: 1 / 255,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    layout: 'NHWC',
  };
}

/**
 * Reads a Hugging Face `preprocessor_config.json` (`CLIPImageProcessor`, `BlipImageProcessor`):
 * `size` (`shortest_edge` or `height`/`width`), `crop_size`, `do_resize`, `do_center_crop`,
 * `do_rescale`, `rescale_factor`, `do_normalize`, `image_mean`, `image_std`. Output is NCHW.
 *
 * @example
 * ```ts
 * const p = preprocessingFromHfConfig(readFileSync('preprocessor_config.json', 'utf8'));
 * p.resize; // { shortestEdge: 224 } for openai/clip-vit-large-patch14
 * ```
 */
export function preprocessingFromHfConfig(config: string | Record<string, unknown>): ImagePreprocessing {
  const c = (typeof config === 'string' ? JSON.parse(config) : config) as Record<string, any>;
  const size = (v: unknown, what: string): { shortestEdge: number } | { height: number; width: number } => {
    if (typeof v === 'number') return { shortestEdge: v };
    const o = v as Record<string, number> | undefined;
    if (o && typeof o.shortest_edge === 'number') return { shortestEdge: o.shortest_edge };
    if (o && typeof o.height === 'number' && typeof o.width === 'number') return { height: o.height, width: o.width };
    throw new Error(`preprocessor_config.json: unsupported value ${JSON.stringify(v)} for field '${what}' (supported: a number, {shortest_edge}, {height, width})`);
  };
  const rgb = (v: unknown, fallback: Rgb, what: string): Rgb => {
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number') return [v, v, v];
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) return v as unknown as Rgb;
    throw new Error(`preprocessor_config.json: unsupported value ${JSON.stringify(v)} for field '${what}' (supported: 3 numbers)`);
  };
  const crop = c.do_center_crop === false || c.crop_size == null ? null : size(c.crop_size, 'crop_size');
  const normalize = c.do_normalize !== false;
  return {
    resize: c.do_resize === false || c.size == null ? null : size(c.size, 'size'),
    crop: crop === null ? null : 'shortestEdge' in crop ? { height: crop.shortestEdge, width: crop.shortestEdge } : crop,
    resample: 'half-pixel',
    rescale: c.do_rescale === false ? 1 : typeof c.rescale_factor === 'number' ? c.rescale_factor : 1 / 255,
    mean: normalize ? rgb(c.image_mean, CLIP_MEAN, 'image_mean') : [0, 0, 0],
    std: normalize ? rgb(c.image_std, CLIP_STD, 'image_std') : [1, 1, 1],
    layout: 'NCHW',
  };
}

/**
 * Anything {@link preprocessImages} takes as one image: decoded pixels ({@link RawImage},
 * `ImageData`), a browser source (`ImageBitmap`, canvas, `<img>`, `<video>`), or an HWC tensor of
 * 0–255 values (`[h, w, 3]` or `[h, w, 4]`).
 */
export type ImageInput = RawImage | tf.Tensor3D | CanvasLike | DrawableImage;

/**
 * One image as a float32 `[h, w, 3]` tensor of 0–255 values (alpha dropped).
 *
 * @example
 * ```ts
 * imageToTensor({ data: rgba, width: 640, height: 480 }).shape; // [480, 640, 3]
 * ```
 */
export function imageToTensor(image: ImageInput): tf.Tensor3D {
  return tf.tidy(() => {
    if (image instanceof tf.Tensor) {
      if (image.rank !== 3 || (image.shape[2] !== 3 && image.shape[2] !== 4)) {
        throw new Error(`imageToTensor: expected an HWC tensor [h, w, 3 or 4], got [${image.shape}]`);
      }
      return tf.slice(tf.cast(image, 'float32'), [0, 0, 0], [-1, -1, 3]) as tf.Tensor3D;
    }
    const raw = readImageSource(image as RawImage);
    const { width, height } = raw;
    const channels = raw.channels ?? raw.data.length / (width * height);
    if ((channels !== 3 && channels !== 4) || raw.data.length !== width * height * channels) {
      throw new Error(`imageToTensor: ${width}×${height} image with ${raw.data.length} bytes is neither RGB nor RGBA`);
    }
    const t = tf.tensor3d(Float32Array.from(raw.data), [height, width, channels]);
    return (channels === 3 ? t : tf.slice(t, [0, 0, 0], [-1, -1, 3])) as tf.Tensor3D;
  });
}

/**
 * Images → one normalised batch for an encoder: resize, center-crop, rescale, `(x - mean) / std`,
 * in `p.layout` (`[b, 3, H, W]` or `[b, H, W, 3]`). Every image must come out the same size
 * (use a crop, or a fixed `{ height, width }` resize).
 *
 * @example
 * ```ts
 * const pixels = preprocessImages([await decodeImage(png), await decodeImage(jpg)], clipPreprocessing(224));
 * pixels.shape; // [2, 3, 224, 224]
 * clip.encode(pixels).shape; // [2, 256, 1024]
 * ```
 */
export function preprocessImages(images: readonly ImageInput[], p: ImagePreprocessing): tf.Tensor4D {
  if (images.length === 0) throw new Error('preprocessImages: expected at least one image, got none');
  return tf.tidy(() => {
    const each = images.map((img) => preprocessOne(imageToTensor(img), p));
    const sizes = new Set(each.map((t) => t.shape.join('×')));
    if (sizes.size > 1) throw new Error(`preprocessImages: images came out in different sizes (${[...sizes].join(', ')}); add a crop or a fixed resize`);
    const batch = tf.stack(each) as tf.Tensor4D; // [b, H, W, 3]
    return p.layout === 'NCHW' ? (tf.transpose(batch, [0, 3, 1, 2]) as tf.Tensor4D) : batch;
  });
}

/** `[h, w, 3]` 0–255 → resized, cropped, normalised `[H, W, 3]`. */
function preprocessOne(x: tf.Tensor3D, p: ImagePreprocessing): tf.Tensor3D {
  let [h, w] = x.shape;
  let y: tf.Tensor3D = x;
  if (p.resize) {
    let nh: number, nw: number;
    if ('shortestEdge' in p.resize) {
      const s = p.resize.shortestEdge;
      [nh, nw] = h <= w ? [s, Math.floor((s * w) / h)] : [Math.floor((s * h) / w), s];
    } else {
      [nh, nw] = [p.resize.height, p.resize.width];
    }
    if (nh !== h || nw !== w) {
      const align = p.resample === 'align-corners';
      y = tf.image.resizeBilinear(y, [nh, nw], align, !align);
      [h, w] = [nh, nw];
    }
  }
  if (p.crop) {
    const { height: ch, width: cw } = p.crop;
    if (ch > h || cw > w) throw new Error(`preprocessImages: crop ${ch}×${cw} is larger than the resized image ${h}×${w}`);
    y = tf.slice(y, [Math.floor((h - ch) / 2), Math.floor((w - cw) / 2), 0], [ch, cw, 3]);
  }
  const mean = tf.tensor1d([...p.mean]);
  const std = tf.tensor1d([...p.std]);
  return tf.div(tf.sub(tf.mul(y, p.rescale), mean), std) as tf.Tensor3D;
}
