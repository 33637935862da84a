import * as tf from '@tensorflow/tfjs-core';
import { formatShape } from './shape-checks';

/** The safetensors dtypes this module reads (see {@link readSafetensors} for the TF.js dtype each becomes). */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'BOOL';

/** What {@link readSafetensors} returns. */
export interface SafetensorsContents {
  /** Every tensor by name (float types as float32, integer types as int32, BOOL as bool); the caller disposes them. */
  tensors: Record<string, tf.Tensor>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
}

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  /** The stored element type. */
  dtype: SafetensorsDtype;
  /** Row-major shape (`[]` for a scalar). */
  shape: number[];
  /** `[begin, end)` in bytes, relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

/** A parsed and validated safetensors header. */
export interface SafetensorsHeader {
  /** The tensors by name, in header order. */
  entries: Record<string, SafetensorsEntry>;
  /** The `__metadata__` map (`{}` when the file has none). */
  metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file (`8 + N`). */
  dataStart: number;
}

/** Options of {@link parseSafetensorsHeader}. */
export interface ParseSafetensorsHeaderOptions {
  /** File name that prefixes every error message. */
  source?: string;
  /**
   * Total length of the file in bytes, when `bytes` holds only its beginning (at least the
   * first `8 + N` bytes). Default: `bytes.length`.
   */
  fileLength?: number;
}

/** Options of {@link readSafetensors}. */
export interface ReadSafetensorsOptions {
  /** File name that prefixes every error message. */
  source?: string;
}

const DTYPE_SIZES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, BOOL: 1 };
const DTYPES = Object.keys(DTYPE_SIZES) as SafetensorsDtype[];
const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
const asBytes = (b: Uint8Array | ArrayBuffer): Uint8Array =>
  b instanceof Uint8Array ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b);

/**
 * Parses and validates the header of a safetensors file without reading any tensor data.
 * Throws one `Error` (prefixed with `options.source` when given) for the first problem found:
 * a truncated file, a header length past the end, a header that is not a UTF-8 JSON object, a
 * malformed entry (dtype, shape, `data_offsets`), offsets past the end of the data buffer, a
 * byte size that disagrees with shape × dtype, overlapping tensors, bytes of the data buffer
 * that no tensor covers, or a `__metadata__` that is not a string → string map.
 *
 * @example
 * ```ts
 * const { entries, metadata, dataStart } = parseSafetensorsHeader(bytes);
 * entries['fc.weight']; // { dtype: 'F32', shape: [4, 8], dataOffsets: [0, 128] }
 * ```
 */
export function parseSafetensorsHeader(bytes: Uint8Array, options: ParseSafetensorsHeaderOptions = {}): SafetensorsHeader {
  const fail = (message: string): never => {
    throw new Error(`${options.source ?? 'safetensors'}: ${message}`);
  };
  const u8 = asBytes(bytes);
  const fileLength = options.fileLength ?? u8.length;
  if (fileLength < 8) fail(`file too short: expected at least 8 bytes (the header length), got ${fileLength}`);
  if (u8.length < 8) fail(`expected the first 8 bytes of the file, got ${u8.length}`);
  const headerLength = new DataView(u8.buffer, u8.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(fileLength - 8)) {
    fail(`header length (bytes 0..7) runs past the end of the file: expected at most ${fileLength - 8}, got ${headerLength}`);
  }
  const dataStart = 8 + Number(headerLength);
  if (u8.length < dataStart) fail(`expected the first ${dataStart} bytes of the file (the whole header), got ${u8.length}`);

  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(u8.subarray(8, dataStart)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isObject(json)) fail(`header: expected a JSON object, got ${Array.isArray(json) ? 'an array' : show(json)}`);
  const header = json as Record<string, unknown>;

  let metadata: Record<string, string> = {};
  if (METADATA_KEY in header) {
    const m = header[METADATA_KEY];
    if (!isObject(m)) fail(`__metadata__: expected an object of strings, got ${show(m)}`);
    for (const [k, v] of Object.entries(m as object)) {
      if (typeof v !== 'string') fail(`__metadata__['${k}']: expected a string, got ${show(v)}`);
    }
    metadata = Object.fromEntries(Object.entries(m as object));
  }

  const dataLength = fileLength - dataStart;
  const parsed: Array<[string, SafetensorsEntry]> = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const what = `tensor '${name}'`;
    if (!isObject(raw)) fail(`${what}: expected an object {dtype, shape, data_offsets}, got ${show(raw)}`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (!DTYPES.includes(dtype as SafetensorsDtype)) fail(`${what}: expected dtype ${DTYPES.join(', ')}, got ${show(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(`${what}: expected shape to be an array of non-negative integers, got ${show(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      fail(`${what}: expected data_offsets [begin, end] of non-negative integers with begin <= end, got ${show(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      fail(`${what}: data_offsets ${show(offsets)} run past the end of the data buffer: expected end <= ${dataLength}, got ${end}`);
    }
    const size = (shape as number[]).reduce((a, d) => a * d, 1) * DTYPE_SIZES[dtype as SafetensorsDtype];
    if (end - begin !== size) {
      const got = `data_offsets ${show(offsets)} (${end - begin} bytes)`;
      fail(`${what}: shape ${formatShape(shape as number[])} of ${dtype} needs ${size} bytes, got ${got}`);
    }
    parsed.push([name, { dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], dataOffsets: [begin, end] }]);
  }

  // The data buffer must be covered exactly: no overlaps, no gaps, no trailing bytes.
  const sorted = [...parsed].sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let covered = 0;
  let previous = '';
  for (const [name, { dataOffsets: [begin, end] }] of sorted) {
    if (begin < covered) {
      fail(`tensor '${name}' (bytes ${begin}..${end}) overlaps tensor '${previous}' (which ends at byte ${covered})`);
    }
    if (begin > covered) {
      fail(`data buffer bytes ${covered}..${begin} belong to no tensor: expected tensor '${name}' to begin at ${covered}, got ${begin}`);
    }
    covered = end;
    previous = name;
  }
  if (covered !== dataLength) {
    const expected = `expected the tensors to cover all ${dataLength} bytes, got ${covered}`;
    fail(`data buffer bytes ${covered}..${dataLength} belong to no tensor: ${expected}`);
  }
  // Object.fromEntries keeps a tensor named `__proto__` as a plain own key.
  return { entries: Object.fromEntries(parsed), metadata, dataStart };
}

/** Exact IEEE 754 half → float (subnormals, ±0, ±Inf and NaN included). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

/** Swaps each `elementSize`-byte element in place between little-endian and host order. */
function swapToHost(bytes: Uint8Array, elementSize: number): Uint8Array {
  if (!LITTLE_ENDIAN_HOST) for (let i = 0; i < bytes.length; i += elementSize) bytes.subarray(i, i + elementSize).reverse();
  return bytes;
}

/** Copies little-endian `bytes` into a fresh, aligned buffer in host byte order. */
function hostOrder(bytes: Uint8Array, elementSize: number): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  swapToHost(out, elementSize);
  return out.buffer;
}

function decode(name: string, { dtype, shape }: SafetensorsEntry, raw: Uint8Array, fail: (m: string) => never): tf.TypedArray {
  switch (dtype) {
    case 'F32':
      return new Float32Array(hostOrder(raw, 4));
    case 'I32':
      return new Int32Array(hostOrder(raw, 4));
    case 'U8':
      return Int32Array.from(raw);
    case 'BOOL':
      return Uint8Array.from(raw, (b) => (b ? 1 : 0));
    case 'F16':
      return Float32Array.from(new Uint16Array(hostOrder(raw, 2)), halfToFloat);
    case 'BF16': {
      const bits = new Uint32Array(raw.length / 2);
      new Uint16Array(hostOrder(raw, 2)).forEach((h, i) => (bits[i] = h << 16));
      return new Float32Array(bits.buffer);
    }
    case 'I64': {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const out = new Int32Array(raw.length / 8);
      for (let i = 0; i < out.length; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v < -2147483648n || v > 2147483647n) {
          const range = 'expected values within int32 range [-2147483648, 2147483647]';
          fail(`tensor '${name}' (I64, shape ${formatShape(shape)}): ${range}, got ${v} at flat index ${i}`);
        }
        out[i] = Number(v);
      }
      return out;
    }
  }
}

const TF_DTYPES: Record<SafetensorsDtype, tf.DataType> = {
  F32: 'float32', F16: 'float32', BF16: 'float32', I32: 'int32', I64: 'int32', U8: 'int32', BOOL: 'bool',
};

/**
 * Reads a safetensors file into new tensors (the caller owns and disposes them). F32, F16 and
 * BF16 become `float32` (exact upcasts); I32, U8 and I64 become `int32` (an I64 value outside
 * int32 range throws, naming the tensor and the value); BOOL becomes `bool`. The header is
 * validated first as by {@link parseSafetensorsHeader}; nothing is allocated when it throws.
 *
 * @example
 * ```ts
 * const { tensors, metadata } = readSafetensors(readFileSync('model.safetensors'), { source: 'model.safetensors' });
 * module.loadStateDict(tensors);
 * tf.dispose(Object.values(tensors));
 * ```
 */
export function readSafetensors(
  bytes: Uint8Array | ArrayBuffer,
  options: ReadSafetensorsOptions = {},
): SafetensorsContents {
  const fail = (message: string): never => {
    throw new Error(`${options.source ?? 'safetensors'}: ${message}`);
  };
  const u8 = asBytes(bytes);
  const { entries, metadata, dataStart } = parseSafetensorsHeader(u8, { source: options.source });
  // Decode everything before creating any tensor, so that a bad value leaks nothing.
  const decoded = Object.entries(entries).map(([name, entry]) => {
    const [begin, end] = entry.dataOffsets;
    return [name, entry, decode(name, entry, u8.subarray(dataStart + begin, dataStart + end), fail)] as const;
  });
  const tensors = Object.fromEntries(
    decoded.map(([name, entry, values]) => [name, tf.tensor(values, entry.shape, TF_DTYPES[entry.dtype])]),
  );
  return { tensors, metadata };
}

const WRITE_DTYPES: Partial<Record<tf.DataType, SafetensorsDtype>> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/**
 * Serializes tensors to a standard safetensors file (readable by the Python `safetensors`
 * library): `float32` → F32, `int32` → I32, `bool` → BOOL (other dtypes throw). Tensors are
 * stored contiguously in sorted key order, the header JSON is padded with spaces to a multiple of
 * 8 bytes, and `__metadata__` is written only when `metadata` is given. The tensors are not
 * disposed.
 *
 * @example
 * ```ts
 * const bytes = writeSafetensors(module.stateDict(), { format: 'pt' });
 * writeFileSync('model.safetensors', bytes);
 * ```
 */
export function writeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const fail = (message: string): never => {
    throw new Error(`writeSafetensors: ${message}`);
  };
  if (metadata !== undefined) {
    if (!isObject(metadata)) fail(`metadata: expected an object of strings, got ${show(metadata)}`);
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(`metadata['${k}']: expected a string, got ${show(v)}`);
    }
  }
  const names = Object.keys(tensors).sort();
  const parts: string[] = metadata === undefined ? [] : [`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) fail(`'${METADATA_KEY}' is reserved and cannot name a tensor`);
    const t = tensors[name];
    const dtype = WRITE_DTYPES[t.dtype] ?? fail(`tensor '${name}': expected dtype float32, int32 or bool, got ${t.dtype}`);
    const values = t.dataSync();
    let chunk: Uint8Array;
    if (dtype === 'BOOL') {
      chunk = Uint8Array.from(values as ArrayLike<number>, (v) => (v ? 1 : 0));
    } else {
      const typed = dtype === 'F32' ? Float32Array.from(values as ArrayLike<number>) : Int32Array.from(values as ArrayLike<number>);
      chunk = swapToHost(new Uint8Array(typed.buffer), 4); // the swap is its own inverse
    }
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape: t.shape, data_offsets: [offset, offset + chunk.length] })}`);
    chunks.push(chunk);
    offset += chunk.length;
  }
  let header = new TextEncoder().encode(`{${parts.join(',')}}`);
  if (header.length % 8 !== 0) {
    const padded = new Uint8Array(header.length + 8 - (header.length % 8)).fill(0x20);
    padded.set(header);
    header = padded;
  }
  const out = new Uint8Array(8 + header.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  let at = 8 + header.length;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
