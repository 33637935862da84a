/**
 * Pixels of one decoded image, row-major, 8 bits per channel: RGBA (`channels` 4, as
 * `ImageData`) or RGB (`channels` 3). A browser `ImageData` fits this shape.
 */
export interface RawImage {
  /** The pixel bytes, row-major with interleaved channels: `width · height · channels` values. */
  data: Uint8Array | Uint8ClampedArray;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 3 or 4. Default: `data.length / (width · height)`. */
  channels?: 3 | 4;
}

/** The encoded image formats {@link decodeImage} recognises. */
export type EncodedImageFormat = 'png' | 'jpeg';

/**
 * The format of encoded image bytes from their signature (PNG `89 50 4E 47 0D 0A 1A 0A`, JPEG
 * `FF D8 FF`), or `null`.
 *
 * @example
 * ```ts
 * sniffImageFormat(readFileSync('cat.jpg')); // 'jpeg'
 * ```
 */
export function sniffImageFormat(bytes: Uint8Array): EncodedImageFormat | null {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/**
 * Decodes PNG or JPEG bytes into RGBA pixels with the browser's own decoder (`createImageBitmap`
 * drawn on an `OffscreenCanvas`); works in pages and workers. Node has no image decoder: there,
 * use `decodeImage` from `@vlm/frozen-loaders/node` (pure-JS `pngjs` and `jpeg-js`, same result
 * shape); this one throws saying so.
 *
 * @example
 * ```ts
 * const img = await decodeImage(await (await fetch('cat.png')).arrayBuffer());
 * img.width, img.height, img.data.length; // 640, 480, 640*480*4
 * const pixels = preprocessImages([img], clipPreprocessing(224)); // [1, 3, 224, 224]
 * ```
 */
export async function decodeImage(bytes: Uint8Array | ArrayBuffer): Promise<RawImage> {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const format = requireImageFormat(u8);
  const g = globalThis as { createImageBitmap?: (b: Blob) => Promise<ImageBitmap>; OffscreenCanvas?: unknown };
  if (typeof g.createImageBitmap !== 'function' || typeof g.OffscreenCanvas !== 'function') {
    throw new Error("decodeImage: this environment has no createImageBitmap/OffscreenCanvas (Node?); in Node import decodeImage from '@vlm/frozen-loaders/node'");
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await g.createImageBitmap(new Blob([u8 as BlobPart], { type: `image/${format}` }));
  } catch (e) {
    throw new Error(`decodeImage: expected a valid ${format.toUpperCase()} image, got one that could not be decoded: ${String((e as Error).message).slice(0, 300)}`);
  }
  try {
    return readImageSource(bitmap);
  } finally {
    bitmap.close();
  }
}

/**
 * The format of `bytes` by {@link sniffImageFormat}, or an Error that shows the first bytes.
 *
 * @internal
 */
export function requireImageFormat(bytes: Uint8Array): EncodedImageFormat {
  const format = sniffImageFormat(bytes);
  if (!format) {
    const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`decodeImage: expected a PNG or JPEG file, got one that is not (first bytes: ${head || 'none'})`);
  }
  return format;
}

/** Anything with a 2-D canvas context (HTMLCanvasElement, OffscreenCanvas). */
export interface CanvasLike {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** The 2-D context, whose `getImageData` gives the pixels. */
  getContext(kind: '2d'): {
    /** The pixels of the `w×h` rectangle whose top-left corner is (`x`, `y`), RGBA (as the DOM `CanvasRenderingContext2D.getImageData`). */
    getImageData(x: number, y: number, w: number, h: number): RawImage;
    /** Draws `src` with its top-left corner at (`x`, `y`) (as the DOM `drawImage`); used to read sources that are not canvases. */
    drawImage?(src: unknown, x: number, y: number): void;
  } | null;
}

/**
 * Anything a 2-D canvas can draw (`ImageBitmap`, `HTMLImageElement`, `HTMLVideoElement`): described by its size only, so the types need no DOM lib.
 */
export interface DrawableImage {
  /** Width in pixels (for an image or video element, `naturalWidth`/`videoWidth` are read first). */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
}

/**
 * The RGBA pixels of a browser image source: an `ImageData`, a canvas (`HTMLCanvasElement`,
 * `OffscreenCanvas`), or anything a canvas can draw (`ImageBitmap`, `HTMLImageElement`,
 * `HTMLVideoElement`), drawn onto an `OffscreenCanvas`.
 *
 * @example
 * ```ts
 * const bitmap = await createImageBitmap(file);
 * const img = readImageSource(bitmap); // { data, width, height, channels: 4 }
 * ```
 */
export function readImageSource(source: RawImage | CanvasLike | DrawableImage): RawImage {
  const s = source as Partial<RawImage & CanvasLike> & { naturalWidth?: number; naturalHeight?: number; videoWidth?: number; videoHeight?: number };
  if (s.data !== undefined && typeof s.width === 'number' && typeof s.height === 'number') return s as RawImage;
  if (typeof s.getContext === 'function') {
    const ctx = s.getContext('2d');
    if (ctx) return rgba(ctx.getImageData(0, 0, s.width!, s.height!));
  }
  const width = s.naturalWidth || s.videoWidth || s.width;
  const height = s.naturalHeight || s.videoHeight || s.height;
  const Offscreen = (globalThis as { OffscreenCanvas?: new (w: number, h: number) => CanvasLike }).OffscreenCanvas;
  if (typeof width !== 'number' || typeof height !== 'number' || !Offscreen) {
    throw new Error('readImageSource: expected ImageData, a canvas, or an ImageBitmap/image/video drawable on an OffscreenCanvas');
  }
  const ctx = new Offscreen(width, height).getContext('2d')!;
  ctx.drawImage!(source, 0, 0);
  return rgba(ctx.getImageData(0, 0, width, height));
}

// ImageData keeps data/width/height as prototype getters: copy them, do not spread.
const rgba = (d: RawImage): RawImage => ({ data: d.data, width: d.width, height: d.height, channels: 4 });
