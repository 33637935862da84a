import { unzlibSync, zlibSync } from 'fflate';
import type { SceneImage } from './rasterise';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

let crcTable: Uint32Array | undefined;
function crc32(bytes: Uint8Array, start: number, end: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out, 4, 8 + body.length));
  return out;
}

/**
 * Encodes an RGB image as PNG bytes (8-bit truecolour, filter "up" per row, zlib via the
 * pure-JS `fflate`): runs in Node and the browser. Deterministic: the same image gives the
 * same bytes.
 *
 * @example
 * ```ts
 * const png = encodePng(renderScene(scene)); // Uint8Array starting with \x89PNG
 * ```
 */
export function encodePng(image: SceneImage): Uint8Array {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || data.length !== width * height * 3) {
    throw new Error(`encodePng: expected an RGB image with data.length = width·height·3, got ${width}×${height} with ${data?.length} bytes`);
  }
  const stride = width * 3;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = y === 0 ? 0 : 2; // none for the first row, "up" after
    for (let i = 0; i < stride; i++) raw[o + 1 + i] = (data[y * stride + i]! - (y === 0 ? 0 : data[(y - 1) * stride + i]!)) & 0xff;
  }
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  const parts = [Uint8Array.from(SIGNATURE), chunk('IHDR', header), chunk('IDAT', zlibSync(raw, { level: 6 })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decodes a PNG into an RGB image: 8-bit truecolour (RGB) or truecolour with alpha (alpha is
 * dropped), non-interlaced, every filter type — what {@link encodePng} and most tools write.
 * Other PNGs, truncated files and bad checksums throw an `Error` saying what was found.
 *
 * @example
 * ```ts
 * decodePng(encodePng(image)).data; // the same bytes as image.data
 * ```
 */
export function decodePng(bytes: Uint8Array): SceneImage {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error('decodePng: not a PNG (the 8-byte signature is missing)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (at + 12 <= bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) throw new Error(`decodePng: chunk '${type}' needs ${length} bytes, the file is truncated`);
    const crc = view.getUint32(at + 8 + length);
    if (crc32(bytes, at + 4, at + 8 + length) !== crc) throw new Error(`decodePng: chunk '${type}' has a bad CRC (corrupt file)`);
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      const hv = new DataView(body.buffer, body.byteOffset, body.byteLength);
      width = hv.getUint32(0);
      height = hv.getUint32(4);
      const [depth, colourType, , , interlace] = [body[8], body[9], body[10], body[11], body[12]];
      if (depth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) {
        throw new Error(`decodePng: expected an 8-bit non-interlaced RGB or RGBA PNG, got bit depth ${depth}, colour type ${colourType}, interlace ${interlace}`);
      }
      channels = colourType === 2 ? 3 : 4;
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') {
      ended = true;
      break;
    }
    at += 12 + length;
  }
  if (!channels) throw new Error('decodePng: no IHDR chunk');
  if (!ended || idat.length === 0) throw new Error('decodePng: the file is truncated (no IDAT or no IEND chunk)');
  const z = new Uint8Array(idat.reduce((n, p) => n + p.length, 0));
  let zi = 0;
  for (const p of idat) {
    z.set(p, zi);
    zi += p.length;
  }
  let raw: Uint8Array;
  try {
    raw = unzlibSync(z);
  } catch (e) {
    throw new Error(`decodePng: the image data does not inflate (${(e as Error).message})`);
  }
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error(`decodePng: expected ${height * (stride + 1)} bytes of image data, got ${raw.length}`);
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? px[row + i - channels]! : 0;
      const b = y > 0 ? px[row - stride + i]! : 0;
      const c = y > 0 && i >= channels ? px[row - stride + i - channels]! : 0;
      const x = raw[src + i]!;
      let v: number;
      if (filter === 0) v = x;
      else if (filter === 1) v = x + a;
      else if (filter === 2) v = x + b;
      else if (filter === 3) v = x + ((a + b) >> 1);
      else if (filter === 4) v = x + paeth(a, b, c);
      else throw new Error(`decodePng: row ${y} has unknown filter type ${filter}`);
      px[row + i] = v & 0xff;
    }
  }
  if (channels === 3) return { data: px, width, height, channels: 3 };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < px.length; i += 4, j += 3) rgb.set(px.subarray(i, i + 3), j);
  return { data: rgb, width, height, channels: 3 };
}
