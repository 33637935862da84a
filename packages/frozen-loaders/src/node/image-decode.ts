import pngjs from 'pngjs';
import jpeg from 'jpeg-js';
import { requireImageFormat, type RawImage } from '../vision/image-decode';

/**
 * Node: decodes PNG or JPEG bytes into RGBA pixels with the pure-JS `pngjs` and `jpeg-js` (the
 * same result as the main entry's browser `decodeImage`). 16-bit PNGs are scaled to 8 bits,
 * palette and grey images expanded.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { decodeImage } from '@vlm/frozen-loaders/node';
 * const img = await decodeImage(readFileSync('cat.png'));
 * img.width, img.height, img.data.length; // 640, 480, 640*480*4
 * ```
 */
export async function decodeImage(bytes: Uint8Array | ArrayBuffer): Promise<RawImage> {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const format = requireImageFormat(u8);
  try {
    if (format === 'png') {
      const png = pngjs.PNG.sync.read(Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength));
      return { data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength), width: png.width, height: png.height, channels: 4 };
    }
    const jpg = jpeg.decode(u8, { useTArray: true, formatAsRGBA: true });
    return { data: jpg.data, width: jpg.width, height: jpg.height, channels: 4 };
  } catch (e) {
    throw new Error(`decodeImage: expected a valid ${format.toUpperCase()} image, got one that could not be decoded: ${String((e as Error).message).slice(0, 300)}`);
  }
}
