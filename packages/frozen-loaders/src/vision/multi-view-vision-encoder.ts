import * as tf from '@tensorflow/tfjs-core';
import type { ImagePreprocessing } from './preprocess';
import type { ImageLayout, VisionEncoder } from './vision-encoder';

/**
 * A deterministic view of an image batch that a {@link MultiViewVisionEncoder} encodes beside
 * the others: preprocessed pixels in, pixels of the same shape and preprocessing out.
 */
export interface ImageView {
  /** A short name for messages and the encoder's name (`'image'`, `'max-channel'`). */
  readonly name: string;
  /** Preprocessed pixels (`preprocessing` says their range and layout) → this view, the same shape. */
  apply(pixels: tf.Tensor, preprocessing: ImagePreprocessing): tf.Tensor;
}

/** The image as it is (the view every multi-view encoder usually starts with). */
export const IMAGE_VIEW: ImageView = Object.freeze({ name: 'image', apply: (pixels: tf.Tensor) => tf.clone(pixels) });

/**
 * A colour-blind view: every pixel's largest channel, in all three channels (taken on the
 * rescaled values before the mean/std normalisation, then normalised again). A shape's contrast
 * against a grey background then depends on how bright its strongest channel is, not on its hue:
 * a saturated blue or red, as dark as the background in luminance, stands out as much as a yellow
 * one. Convolutional features of this view carry shape the same way for every colour, which is
 * what a bridge needs to name a shape in a colour it never saw it in.
 *
 * @example
 * ```ts
 * const pixels = preprocessImages([image], enc.preprocessing); // [1, 224, 224, 3] in [0, 1]
 * MAX_CHANNEL_VIEW.apply(pixels, enc.preprocessing);          // grey: r = g = b = max(r, g, b)
 * ```
 */
export const MAX_CHANNEL_VIEW: ImageView = Object.freeze({
  name: 'max-channel',
  apply(pixels: tf.Tensor, preprocessing: ImagePreprocessing): tf.Tensor {
    const axis = preprocessing.layout === 'NHWC' ? 3 : 1;
    if (pixels.rank !== 4 || pixels.shape[axis] !== 3) {
      throw new Error(`MAX_CHANNEL_VIEW: expected ${preprocessing.layout} pixels with 3 channels, got [${pixels.shape}]`);
    }
    return tf.tidy(() => {
      const perChannel = axis === 3 ? [1, 1, 1, 3] : [1, 3, 1, 1];
      const mean = tf.tensor([...preprocessing.mean], perChannel);
      const std = tf.tensor([...preprocessing.std], perChannel);
      const rescaled = tf.add(tf.mul(pixels, std), mean); // undo the normalisation
      const max = tf.max(rescaled, axis, true); // [b, h, w, 1] or [b, 1, h, w]
      return tf.div(tf.sub(max, mean), std); // broadcast to 3 channels, normalised again
    });
  },
});

/**
 * A shape-blind view: each pixel the mean of the `size`×`size` square around it (a box blur; at
 * the borders the mean of the pixels inside the image). Colours stay, outlines go: a star and a
 * circle of the same colour become the same soft blob. Named `box-blur-<size>`. Beside
 * {@link MAX_CHANNEL_VIEW} (colour-blind) it gives a bridge colour and shape in separate tokens.
 * The blur is linear, so it commutes with the mean/std normalisation.
 *
 * @example
 * ```ts
 * const blur = boxBlurView(15);
 * blur.name;                                  // 'box-blur-15'
 * blur.apply(pixels, enc.preprocessing).shape; // pixels.shape
 * ```
 */
export function boxBlurView(size: number): ImageView {
  if (!Number.isInteger(size) || size < 1) throw new Error(`boxBlurView: size must be a positive integer (pixels), got ${size}`);
  return Object.freeze({
    name: `box-blur-${size}`,
    apply(pixels: tf.Tensor, preprocessing: ImagePreprocessing): tf.Tensor {
      if (pixels.rank !== 4) throw new Error(`box-blur-${size}: expected ${preprocessing.layout} pixels [batch, ...], got [${pixels.shape}]`);
      return tf.tidy(() => {
        const nhwc = preprocessing.layout === 'NHWC' ? (pixels as tf.Tensor4D) : tf.transpose(pixels as tf.Tensor4D, [0, 2, 3, 1]);
        const blurred = tf.avgPool(nhwc, size, 1, 'same');
        return preprocessing.layout === 'NHWC' ? blurred : tf.transpose(blurred, [0, 3, 1, 2]);
      });
    },
  });
}

/** The views of this package by name (what {@link imageViewsNamed} looks up). */
export const IMAGE_VIEWS: Readonly<Record<string, ImageView>> = Object.freeze({ [IMAGE_VIEW.name]: IMAGE_VIEW, [MAX_CHANNEL_VIEW.name]: MAX_CHANNEL_VIEW });

/**
 * The views named in `names` (e.g. read back from a file that recorded a
 * {@link MultiViewVisionEncoder}'s views), in that order: those of {@link IMAGE_VIEWS} and
 * `box-blur-<size>` ({@link boxBlurView}); an unknown name is an Error that lists the known ones.
 *
 * @example
 * ```ts
 * imageViewsNamed(['box-blur-15', 'max-channel']); // [boxBlurView(15), MAX_CHANNEL_VIEW]
 * ```
 */
export function imageViewsNamed(names: readonly string[]): ImageView[] {
  return names.map((n) => {
    const blur = /^box-blur-([1-9][0-9]*)$/.exec(n);
    if (blur) return boxBlurView(Number(blur[1]));
    const view = Object.hasOwn(IMAGE_VIEWS, n) ? IMAGE_VIEWS[n] : undefined;
    if (!view) throw new Error(`imageViewsNamed: no view named '${n}' (known: ${Object.keys(IMAGE_VIEWS).join(', ')}, box-blur-<size>)`);
    return view;
  });
}

/** Options of {@link MultiViewVisionEncoder}. */
export interface MultiViewVisionEncoderOptions {
  /**
   * How the views' tokens are joined: `'tokens'` one view after the other, `[batch, views·tokens,
   * width]`; `'channels'` side by side per position, `[batch, tokens, views·width]` (for a bridge
   * that spends an LM position per token, as an LLaVA projector). Default: `'tokens'`.
   */
  join?: 'tokens' | 'channels';
  /** Dispose the wrapped encoder with this one. Default: `true`. */
  ownsEncoder?: boolean;
}

/**
 * A frozen encoder run on several views of each image ({@link ImageView}), its tokens joined view
 * after view (`[batch, views·tokens, width]`, the default) or side by side per position
 * ({@link MultiViewVisionEncoderOptions.join}). To a bridge that attends (a Perceiver Resampler,
 * a Q-Former) the views are more tokens, or frames to read apart (`@vlm/pipelines`' Flamingo and
 * Blip2 `framesPerImage`). The demo uses {@link boxBlurView} and
 * {@link MAX_CHANNEL_VIEW}: colour and shape in separate tokens, so a bridge trained on some
 * colour–shape pairs names pairs it never saw (nsfwjs' MobileNetV2 alone sees the shape of a dark
 * blue triangle poorly, and a bridge reading the image names the colour seen with the shape).
 * Owns the wrapped encoder unless `ownsEncoder` is false.
 *
 * @example
 * ```ts
 * const enc = new MultiViewVisionEncoder(await loadNsfwjsMobileNetV2Encoder(NSFWJS_MOBILENET_V2_COLOUR_CUT), [boxBlurView(15), MAX_CHANNEL_VIEW]);
 * enc.encode(preprocessImages([image], enc.preprocessing)).shape; // [1, 98, 192]: 49 tokens per view
 * ```
 */
export class MultiViewVisionEncoder implements VisionEncoder {
  readonly name: string;
  readonly inputLayout: ImageLayout;
  readonly preprocessing: ImagePreprocessing;
  readonly tokenWidth: number;
  readonly numTokens: number;
  /** How the views' tokens are joined ({@link MultiViewVisionEncoderOptions.join}). */
  readonly join: 'tokens' | 'channels';

  constructor(
    /** The frozen encoder every view goes through. */
    readonly encoder: VisionEncoder,
    /** The views, in the order their tokens come. */
    readonly views: readonly ImageView[],
    private readonly options: MultiViewVisionEncoderOptions = {},
  ) {
    if (views.length === 0) throw new Error('MultiViewVisionEncoder: expected at least one view, got none');
    const names = views.map((v) => v.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw new Error(`MultiViewVisionEncoder: view names must be distinct, '${twice}' is given twice (views: ${names.join(', ')})`);
    this.join = options.join ?? 'tokens';
    if (this.join !== 'tokens' && this.join !== 'channels') throw new Error(`MultiViewVisionEncoder: join must be 'tokens' or 'channels', got '${String(this.join)}'`);
    this.name = `${encoder.name}, views ${names.join(' + ')}${this.join === 'channels' ? ' side by side' : ''}`;
    this.inputLayout = encoder.inputLayout;
    this.preprocessing = encoder.preprocessing;
    this.tokenWidth = (this.join === 'channels' ? views.length : 1) * encoder.tokenWidth;
    this.numTokens = (this.join === 'tokens' ? views.length : 1) * encoder.numTokens;
  }

  /** Tokens each view contributes (the wrapped encoder's count). */
  get tokensPerView(): number {
    return this.encoder.numTokens;
  }

  /** Pixels → every view's tokens, joined: `[batch, views·tokens, width]` or `[batch, tokens, views·width]`. */
  encode(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const parts = this.views.map((view) => {
        const seen = view.apply(pixels, this.preprocessing);
        if (!tf.util.arraysEqual(seen.shape, pixels.shape)) {
          throw new Error(`MultiViewVisionEncoder: view '${view.name}' must keep the pixels' shape [${pixels.shape}], got [${seen.shape}]`);
        }
        return this.encoder.encode(seen);
      });
      return parts.length === 1 ? parts[0]! : (tf.concat(parts, this.join === 'tokens' ? 1 : 2) as tf.Tensor3D);
    });
  }

  /** Releases the wrapped encoder (unless `ownsEncoder: false`). */
  dispose(): void {
    if (this.options.ownsEncoder ?? true) this.encoder.dispose();
  }
}

/**
 * Tokens of views joined one after the other (`[batch, views·tokens, width]`, a
 * {@link MultiViewVisionEncoder}'s default) → the same tokens side by side per position
 * (`[batch, tokens, views·width]`, its `join: 'channels'`): for cached features that one bridge
 * reads as more tokens and another as wider ones. A new tensor.
 *
 * @example
 * ```ts
 * viewsSideBySide(features, 2).shape; // [N, 98, 192] → [N, 49, 384]
 * ```
 */
export function viewsSideBySide(tokens: tf.Tensor, views: number): tf.Tensor3D {
  if (!Number.isInteger(views) || views < 1) throw new Error(`viewsSideBySide: views must be a positive integer, got ${views}`);
  if (tokens.rank !== 3 || tokens.shape[1]! % views !== 0) {
    throw new Error(`viewsSideBySide: expected tokens [batch, ${views}·tokens, width] (a multiple of ${views} tokens), got [${tokens.shape}]`);
  }
  const [b, vn, d] = tokens.shape as [number, number, number];
  const n = vn / views;
  return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(tokens, [b, views, n, d]), [0, 2, 1, 3]), [b, n, views * d]));
}
