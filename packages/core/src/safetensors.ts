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
  /** Read only the tensors whose name passes (the others are never decoded). Default: all. */
  filter?: (name: string) => boolean;
}

/**
 * Random access to the bytes of a safetensors file that is not held in memory as a whole, e.g.
 * a file read with positional reads (`@vlm/frozen-loaders`' `readHfCheckpointDir` makes these
 * for files of any size, past 2 GiB included). {@link SafetensorsFile} reads the header first
 * and then each tensor it is asked for, straight into the tensor's own array.
 */
export interface SafetensorsByteSource {
  /** Length of the file in bytes. */
  readonly byteLength: number;
  /** Fills all of `into` with the file's bytes from byte `position` on; throws when the file is shorter. */
  readInto(position: number, into: Uint8Array): void;
}

/** Options of {@link SafetensorsFile.readTensor}. */
export interface ReadTensorOptions {
  /**
   * Return the 2-D float tensor transposed (`[cols, rows]`), decoded straight into that layout
   * (as Linear kernels are kept), instead of transposing it afterwards. Default: `false`.
   */
  transpose?: boolean;
}

/** A safetensors file: its bytes in memory, or a {@link SafetensorsByteSource}. */
export type SafetensorsInput = Uint8Array | ArrayBuffer | SafetensorsByteSource;

const DTYPE_SIZES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, BOOL: 1 };
const DTYPES = Object.keys(DTYPE_SIZES) as SafetensorsDtype[];
const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** The format's own limit on the header (the Rust reference's `MAX_HEADER_SIZE`). */
const MAX_HEADER_BYTES = 100_000_000;
/** Deeper JSON than this is no safetensors header (a valid one nests 3 levels). */
const MAX_HEADER_DEPTH = 64;
/** Elements decoded per step for F16, BF16 and I64 (bounded scratch memory). */
const CHUNK_ELEMENTS = 1 << 20;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const asBytes = (b: Uint8Array | ArrayBuffer): Uint8Array =>
  b instanceof Uint8Array ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b);

/**
 * A short, bounded rendering of any JSON value for error messages: at most `budget` characters
 * and 4 levels (a hostile header can be 100 MB and nested thousands of levels deep).
 */
function show(v: unknown, budget = 120): string {
  if (v === undefined) return 'nothing';
  let out = '';
  const walk = (x: unknown, depth: number): void => {
    if (out.length > budget) return;
    if (Array.isArray(x) || isObject(x)) {
      if (depth >= 4) {
        out += Array.isArray(x) ? '[…]' : '{…}';
        return;
      }
      const array = Array.isArray(x);
      out += array ? '[' : '{';
      let first = true;
      for (const [k, item] of array ? x.entries() : Object.entries(x)) {
        if (out.length > budget) break;
        if (!first) out += ',';
        first = false;
        if (!array) out += `${clip(JSON.stringify(k), budget)}:`;
        walk(item, depth + 1);
      }
      out += array ? ']' : '}';
    } else {
      out += clip(JSON.stringify(x) ?? String(x), budget);
    }
  };
  walk(v, 0);
  return clip(out, budget);
}

/** `s` cut to `max` characters, saying how long it was. */
function clip(s: string, max = 120): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}

/** A shape as errors show it: `[2, 3]`, or a bounded rendering of a very long one. */
const shapeText = (shape: unknown): string =>
  Array.isArray(shape) && shape.length <= 16 && shape.every((d) => typeof d === 'number') ? formatShape(shape) : show(shape);

/** A tensor name as errors quote it (bounded). */
const quote = (name: string): string => `'${clip(name, 100)}'`;

/**
 * Checks what `JSON.parse` cannot: the nesting depth and duplicate keys in any object (the
 * Rust reference rejects a header that names a tensor twice; `JSON.parse` keeps the last).
 * Runs on text that `JSON.parse` accepted.
 */
function scanJson(text: string, fail: (message: string) => never): void {
  const stack: Array<Set<string> | null> = []; // a Set of keys per open object, null per array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? ((escaped = true), 2) : 1;
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        const raw = text.slice(i + 1, j);
        const key = escaped ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (keys.has(key)) {
          fail(`header names ${quote(key)} twice${stack.length === 1 ? '' : ` (at depth ${stack.length})`}: expected unique keys, as the safetensors format requires`);
        }
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push(c === 0x7b ? new Set() : null);
      if (stack.length > MAX_HEADER_DEPTH) fail(`header nests deeper than ${MAX_HEADER_DEPTH} levels: expected a safetensors header (3 levels)`);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
}

/**
 * Parses and validates the header of a safetensors file without reading any tensor data.
 * Throws one `Error` (prefixed with `options.source` when given) for the first problem found:
 * a truncated file, a header length past the end or over the format's 100 MB limit, a header
 * that is not a UTF-8 JSON object (or nests deeper than 64 levels, or names a key twice), a
 * malformed entry (dtype, shape, `data_offsets`), a shape of more than 2^53 elements (zeros
 * aside), offsets past the end of the data buffer, a byte size that disagrees with shape ×
 * dtype, overlapping tensors, bytes of the data buffer that no tensor covers, or a
 * `__metadata__` that is not a string → string map. Messages quote the input only in part
 * (names and values are cut to ~100 characters).
 *
 * @example
 * ```ts
 * const { entries, metadata, dataStart } = parseSafetensorsHeader(bytes);
 * entries['fc.weight']; // { dtype: 'F32', shape: [4, 8], dataOffsets: [0, 128] }
 * ```
 */
export function parseSafetensorsHeader(bytes: Uint8Array, options: ParseSafetensorsHeaderOptions = {}): SafetensorsHeader {
  const fail = (message: string): never => {
    throw new Error(`${clip(String(options.source ?? 'safetensors'), 200)}: ${message}`);
  };
  if (!(bytes instanceof Uint8Array)) fail(`expected the file's bytes as a Uint8Array, got ${show(bytes, 40)}`);
  const u8 = asBytes(bytes);
  const fileLength = options.fileLength ?? u8.length;
  if (!isCount(fileLength)) fail(`fileLength: expected a non-negative integer number of bytes, got ${show(fileLength, 40)}`);
  if (fileLength < 8) fail(`file too short: expected at least 8 bytes (the header length), got ${fileLength}`);
  if (u8.length < 8) fail(`expected the first 8 bytes of the file, got ${u8.length}`);
  const headerLength = new DataView(u8.buffer, u8.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(fileLength - 8)) {
    fail(`header length (bytes 0..7) runs past the end of the file: expected at most ${fileLength - 8}, got ${headerLength}`);
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length (bytes 0..7) is ${headerLength} bytes: expected at most ${MAX_HEADER_BYTES}, the safetensors format's limit`);
  }
  const dataStart = 8 + Number(headerLength);
  if (u8.length < dataStart) fail(`expected the first ${dataStart} bytes of the file (the whole header), got ${u8.length}`);

  let json: unknown;
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(u8.subarray(8, dataStart));
    json = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid UTF-8 JSON: ${clip((e as Error).message, 200)}`);
  }
  scanJson(text, fail);
  if (!isObject(json)) fail(`header: expected a JSON object, got ${Array.isArray(json) ? 'an array' : show(json)}`);
  const header = json as Record<string, unknown>;

  let metadata: Record<string, string> = {};
  if (METADATA_KEY in header) {
    const m = header[METADATA_KEY];
    if (!isObject(m)) fail(`__metadata__: expected an object of strings, got ${show(m)}`);
    for (const [k, v] of Object.entries(m as object)) {
      if (typeof v !== 'string') fail(`__metadata__[${quote(k)}]: expected a string, got ${show(v)}`);
    }
    metadata = Object.fromEntries(Object.entries(m as object));
  }

  const dataLength = fileLength - dataStart;
  const parsed: Array<[string, SafetensorsEntry]> = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const what = `tensor ${quote(name)}`;
    if (!isObject(raw)) fail(`${what}: expected an object {dtype, shape, data_offsets}, got ${show(raw)}`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (!DTYPES.includes(dtype as SafetensorsDtype)) fail(`${what}: expected dtype ${DTYPES.join(', ')}, got ${show(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(`${what}: expected shape to be an array of non-negative integers, got ${show(shape)}`);
    }
    let elements = 1;
    for (const d of shape as number[]) if (d !== 0) elements *= d;
    if (!Number.isSafeInteger(elements)) {
      fail(`${what}: shape ${shapeText(shape)} has more than 2^53 elements (zero dimensions aside): expected a shape that can be stored`);
    }
    if ((shape as number[]).includes(0)) elements = 0;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      fail(`${what}: expected data_offsets [begin, end] of non-negative integers with begin <= end, got ${show(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      fail(`${what}: data_offsets ${show(offsets)} run past the end of the data buffer: expected end <= ${dataLength}, got ${end}`);
    }
    const size = elements * DTYPE_SIZES[dtype as SafetensorsDtype];
    if (end - begin !== size) {
      const got = `data_offsets ${show(offsets)} (${end - begin} bytes)`;
      fail(`${what}: shape ${shapeText(shape)} of ${dtype} needs ${size} bytes, got ${got}`);
    }
    parsed.push([name, { dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], dataOffsets: [begin, end] }]);
  }

  // The data buffer must be covered exactly: no overlaps, no gaps, no trailing bytes.
  const sorted = [...parsed].sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let covered = 0;
  let previous = '';
  for (const [name, { dataOffsets: [begin, end] }] of sorted) {
    if (begin < covered) {
      fail(`tensor ${quote(name)} (bytes ${begin}..${end}) overlaps tensor ${quote(previous)} (which ends at byte ${covered})`);
    }
    if (begin > covered) {
      fail(`data buffer bytes ${covered}..${begin} belong to no tensor: expected tensor ${quote(name)} to begin at ${covered}, got ${begin}`);
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

/** float32 → IEEE 754 half bits, rounded to nearest even (overflow → ±Inf, NaN stays NaN). */
function floatToHalf(value: number): number {
  const x = new Uint32Array(new Float32Array([value]).buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // a half subnormal (or ±0)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is still right (up to Inf)
  return sign | h;
}

let halfTable: Uint32Array | null = null;
/** The float32 bit pattern of every half (256 KB, built once): decoding is one lookup per element. */
function halfBits(): Uint32Array {
  if (halfTable === null) {
    const table = new Uint32Array(65536);
    const asFloat = new Float32Array(table.buffer);
    for (let h = 0; h < 65536; h++) asFloat[h] = halfToFloat(h);
    halfTable = table;
  }
  return halfTable;
}

/** `out[at + i]` = the float32 bits of half `src[i]`, by table (one monomorphic loop: ~1 ns an element). */
function decodeF16(src: Uint16Array, out: Uint32Array, at: number, table: Uint32Array): void {
  const n = src.length;
  for (let i = 0; i < n; i++) out[at + i] = table[src[i]!]!;
}

/** `out[at + i]` = the float32 bits of bfloat16 `src[i]` (its upper 16 bits). */
function decodeBF16(src: Uint16Array, out: Uint32Array, at: number): void {
  const n = src.length;
  for (let i = 0; i < n; i++) out[at + i] = src[i]! << 16;
}

/**
 * Writes the `k × cols` row block `src` (rows `r0…r0+k` of a `[rows, cols]` matrix, as 32-bit
 * words: F32 bits) into its place in `out`, the `[cols, rows]` transpose:
 * `out[c·rows + r0 + r] = src[r·cols + c]`. Four columns at a time: the four words of a source
 * row come from one cache line and go to four output runs (~3× faster than one column at a
 * time, measured).
 */
function transposeBlock32(src: Uint32Array, out: Uint32Array, k: number, cols: number, rows: number, r0: number): void {
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const o0 = c * rows + r0;
    const o1 = o0 + rows;
    const o2 = o1 + rows;
    const o3 = o2 + rows;
    for (let r = 0, i = c; r < k; r++, i += cols) {
      out[o0 + r] = src[i]!;
      out[o1 + r] = src[i + 1]!;
      out[o2 + r] = src[i + 2]!;
      out[o3 + r] = src[i + 3]!;
    }
  }
  for (; c < cols; c++) {
    const o = c * rows + r0;
    for (let r = 0, i = c; r < k; r++, i += cols) out[o + r] = src[i]!;
  }
}

/** {@link transposeBlock32} of F16 words, decoded on the way by `table` (one pass). */
function transposeBlockF16(src: Uint16Array, out: Uint32Array, k: number, cols: number, rows: number, r0: number, table: Uint32Array): void {
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const o0 = c * rows + r0;
    const o1 = o0 + rows;
    const o2 = o1 + rows;
    const o3 = o2 + rows;
    for (let r = 0, i = c; r < k; r++, i += cols) {
      out[o0 + r] = table[src[i]!]!;
      out[o1 + r] = table[src[i + 1]!]!;
      out[o2 + r] = table[src[i + 2]!]!;
      out[o3 + r] = table[src[i + 3]!]!;
    }
  }
  for (; c < cols; c++) {
    const o = c * rows + r0;
    for (let r = 0, i = c; r < k; r++, i += cols) out[o + r] = table[src[i]!]!;
  }
}

/** {@link transposeBlock32} of BF16 words, widened on the way (one pass). */
function transposeBlockBF16(src: Uint16Array, out: Uint32Array, k: number, cols: number, rows: number, r0: number): void {
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const o0 = c * rows + r0;
    const o1 = o0 + rows;
    const o2 = o1 + rows;
    const o3 = o2 + rows;
    for (let r = 0, i = c; r < k; r++, i += cols) {
      out[o0 + r] = src[i]! << 16;
      out[o1 + r] = src[i + 1]! << 16;
      out[o2 + r] = src[i + 2]! << 16;
      out[o3 + r] = src[i + 3]! << 16;
    }
  }
  for (; c < cols; c++) {
    const o = c * rows + r0;
    for (let r = 0, i = c; r < k; r++, i += cols) out[o + r] = src[i]! << 16;
  }
}

let scratchBuffer = new ArrayBuffer(0);
/**
 * A scratch array of `bytes` bytes (8-byte aligned), shared by every read: reads are
 * synchronous, so one is in use at a time, and reusing it spares the garbage collector a
 * fresh array per tensor. At most 8 MiB (a block of rows or a chunk) unless one row is longer.
 */
function scratch(bytes: number): Uint8Array {
  if (scratchBuffer.byteLength < bytes) scratchBuffer = new ArrayBuffer(Math.ceil(bytes / 8) * 8);
  return new Uint8Array(scratchBuffer, 0, bytes);
}

/** Swaps each `elementSize`-byte element in place between little-endian and host order. */
function swapToHost(bytes: Uint8Array, elementSize: number): Uint8Array {
  if (!LITTLE_ENDIAN_HOST) for (let i = 0; i < bytes.length; i += elementSize) bytes.subarray(i, i + elementSize).reverse();
  return bytes;
}

const TF_DTYPES: Record<SafetensorsDtype, tf.DataType> = {
  F32: 'float32', F16: 'float32', BF16: 'float32', I32: 'int32', I64: 'int32', U8: 'int32', BOOL: 'bool',
};

/** The TF.js dtype a safetensors dtype is read as (`float32`, `int32` or `bool`). */
export function safetensorsTfDtype(dtype: SafetensorsDtype): tf.DataType {
  return TF_DTYPES[dtype];
}

// The parts of the wasm backend (`BackendWasm`) that allocate a tensor on its heap.
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

/**
 * On the wasm backend: a new tensor allocated on the heap (uninitialised) and a function that
 * returns a view of its memory (to call after any other allocation: heap growth detaches
 * older views). `null` elsewhere, or for an empty tensor.
 */
function wasmHeapTensor(shape: number[], dtype: tf.DataType): { tensor: tf.Tensor; values: () => tf.TypedArray } | null {
  if (tf.getBackend() !== 'wasm' || shape.includes(0)) return null;
  const backend = tf.backend() as unknown as Partial<WasmHeapBackend>;
  if (typeof backend.makeOutput !== 'function' || typeof backend.typedArrayFromHeap !== 'function') return null;
  const info = backend.makeOutput([...shape], dtype);
  const tensor = tf.engine().makeTensorFromTensorInfo(info);
  return { tensor, values: () => backend.typedArrayFromHeap!(info) };
}

const isSource = (input: unknown): input is SafetensorsByteSource =>
  typeof input === 'object' && input !== null && typeof (input as SafetensorsByteSource).readInto === 'function' &&
  typeof (input as SafetensorsByteSource).byteLength === 'number';

/**
 * One safetensors file opened for reading by tensor: the header is parsed and validated first
 * (as by {@link parseSafetensorsHeader}; for a {@link SafetensorsByteSource} only the header's
 * bytes are read), then each tensor asked for is decoded straight into a new array of its
 * TF.js dtype: F32 and I32 by one copy, F16 by a 65,536-entry table and BF16 by a shift, in
 * chunks of 2^20 elements (the scratch memory stays bounded whatever the tensor's size).
 * Nothing else of the file is read or kept.
 *
 * @example
 * ```ts
 * const file = SafetensorsFile.open(bytes, { source: 'model.safetensors' });
 * file.names(); // ['lm_head.weight', ...]
 * const w = file.readTensor('lm_head.weight'); // float32, even when stored as F16 or BF16
 * ```
 */
export class SafetensorsFile {
  /** The parsed header: dtype, shape and offsets of every tensor, and `__metadata__`. */
  readonly header: SafetensorsHeader;
  /** The name errors give (`options.source`, or `'safetensors'`). */
  readonly source: string;
  private readonly bytes: Uint8Array | null;
  private readonly byteSource: SafetensorsByteSource | null;

  private constructor(header: SafetensorsHeader, source: string, bytes: Uint8Array | null, byteSource: SafetensorsByteSource | null) {
    this.header = header;
    this.source = source;
    this.bytes = bytes;
    this.byteSource = byteSource;
  }

  /** Parses the header of `input` (bytes in memory or a byte source) and returns the file, or throws naming the problem. */
  static open(input: SafetensorsInput, options: ReadSafetensorsOptions = {}): SafetensorsFile {
    const source = options.source ?? 'safetensors';
    if (isSource(input)) {
      const length = input.byteLength;
      if (!isCount(length)) throw new Error(`${source}: byteLength: expected a non-negative integer, got ${show(length, 40)}`);
      const first = new Uint8Array(Math.min(8, length));
      input.readInto(0, first);
      let headerBytes = first;
      if (length >= 8) {
        const n = new DataView(first.buffer).getBigUint64(0, true);
        if (n <= BigInt(Math.min(length - 8, MAX_HEADER_BYTES))) {
          headerBytes = new Uint8Array(8 + Number(n));
          headerBytes.set(first);
          input.readInto(8, headerBytes.subarray(8));
        }
      }
      return new SafetensorsFile(parseSafetensorsHeader(headerBytes, { source, fileLength: length }), source, null, input);
    }
    if (!(input instanceof Uint8Array) && !(input instanceof ArrayBuffer)) {
      throw new Error(`${source}: expected the file as a Uint8Array, an ArrayBuffer or a byte source, got ${show(input, 40)}`);
    }
    const u8 = asBytes(input);
    return new SafetensorsFile(parseSafetensorsHeader(u8, { source }), source, u8, null);
  }

  /** The tensor names, in header order. */
  names(): string[] {
    return Object.keys(this.header.entries);
  }

  /** The header entry of tensor `name`, or throws naming the file and the tensor. */
  entry(name: string): SafetensorsEntry {
    const entry = Object.prototype.hasOwnProperty.call(this.header.entries, name) ? this.header.entries[name] : undefined;
    if (entry === undefined) throw new Error(`${this.source}: no tensor named ${quote(name)}`);
    return entry;
  }

  /**
   * The values of tensor `name`, decoded into a new array of its TF.js dtype (`Float32Array`
   * for F32/F16/BF16, `Int32Array` for I32/I64/U8, `Uint8Array` of 0/1 for BOOL). An I64
   * value outside int32 range throws, naming the tensor and the value.
   */
  readValues(name: string): tf.TypedArray {
    const { dtype, shape } = this.entry(name);
    const n = shape.reduce((a, d) => a * d, 1);
    const out = TF_DTYPES[dtype] === 'float32' ? new Float32Array(n) : TF_DTYPES[dtype] === 'int32' ? new Int32Array(n) : new Uint8Array(n);
    this.decodeInto(name, out);
    return out;
  }

  /**
   * Tensor `name` as a new TF.js tensor (the caller disposes it); see
   * {@link SafetensorsFile.readValues}. On the wasm backend the tensor is allocated on the wasm
   * heap first and decoded straight into it (no JavaScript copy that waits for the garbage
   * collector); elsewhere the decoded array becomes the tensor's values.
   */
  readTensor(name: string, options: ReadTensorOptions = {}): tf.Tensor {
    const { dtype, shape } = this.entry(name);
    const transpose = options.transpose === true;
    if (transpose && (shape.length !== 2 || TF_DTYPES[dtype] !== 'float32')) {
      throw new Error(`${this.source}: tensor ${quote(name)}: transpose needs a 2-D float tensor, got ${dtype} ${shapeText(shape)}`);
    }
    const outShape = transpose ? [shape[1]!, shape[0]!] : shape;
    const decode = (out: tf.TypedArray) => (transpose ? this.decodeTransposedInto(name, out as Float32Array) : this.decodeInto(name, out));
    const onHeap = wasmHeapTensor(outShape, TF_DTYPES[dtype]);
    if (onHeap === null) {
      if (!transpose) return tf.tensor(this.readValues(name), shape, TF_DTYPES[dtype]);
      const out = new Float32Array(shape[0]! * shape[1]!);
      decode(out);
      return tf.tensor(out, outShape, 'float32');
    }
    try {
      decode(onHeap.values());
    } catch (e) {
      onHeap.tensor.dispose();
      throw e;
    }
    return onHeap.tensor;
  }

  /**
   * Decodes 2-D float tensor `name` (`[rows, cols]`) transposed into `out` (`[cols, rows]`):
   * up to 2^20 elements of stored rows are read at a time into a scratch array (one read, not
   * one per block: a byte source may open the file for each) or viewed in place (aligned bytes
   * in memory), then decoded and transposed in one pass, a block of up to 64 rows at a time.
   */
  private decodeTransposedInto(name: string, out: Float32Array): void {
    const { dtype, shape, dataOffsets } = this.entry(name);
    const [rows, cols] = shape as [number, number];
    if (rows === 0 || cols === 0) return;
    const size = DTYPE_SIZES[dtype];
    const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    const table = dtype === 'F16' ? halfBits() : null;
    // 64 rows at a time: the 64 source rows a column walks stay in L1 across the next columns.
    const block = Math.max(1, Math.min(rows, 64, Math.floor(CHUNK_ELEMENTS / cols)));
    const span = Math.max(block, Math.floor(CHUNK_ELEMENTS / cols / block) * block); // rows per read
    const start = this.header.dataStart + dataOffsets[0];
    for (let s0 = 0; s0 < rows; s0 += span) {
      const n = Math.min(span, rows - s0);
      const at = start + s0 * cols * size;
      let bytes: Uint8Array;
      if (this.bytes && LITTLE_ENDIAN_HOST && (this.bytes.byteOffset + at) % size === 0) {
        bytes = this.bytes.subarray(at, at + n * cols * size);
      } else {
        bytes = scratch(n * cols * size);
        this.read(at, bytes);
        swapToHost(bytes, size);
      }
      for (let r = 0; r < n; r += block) {
        const k = Math.min(block, n - r);
        const offset = bytes.byteOffset + r * cols * size;
        if (size === 4) transposeBlock32(new Uint32Array(bytes.buffer, offset, k * cols), bits, k, cols, rows, s0 + r);
        else if (table) transposeBlockF16(new Uint16Array(bytes.buffer, offset, k * cols), bits, k, cols, rows, s0 + r, table);
        else transposeBlockBF16(new Uint16Array(bytes.buffer, offset, k * cols), bits, k, cols, rows, s0 + r);
      }
    }
  }

  /**
   * Decodes elements `[first, first + n)` of tensor `name` (default: all) into `out[0, n)`, an
   * array of its TF.js dtype's type.
   */
  private decodeInto(name: string, out: tf.TypedArray, first = 0, count?: number): void {
    const { dtype, shape, dataOffsets: [begin, end] } = this.entry(name);
    const at = this.header.dataStart + begin + first * DTYPE_SIZES[dtype];
    const n = count ?? (end - begin) / DTYPE_SIZES[dtype];
    switch (dtype) {
      case 'F32':
      case 'I32': {
        const bytes = new Uint8Array(out.buffer, out.byteOffset, 4 * n);
        this.read(at, bytes);
        swapToHost(bytes, 4);
        return;
      }
      case 'BOOL': {
        const raw = out as Uint8Array;
        this.read(at, raw);
        for (let i = 0; i < n; i++) raw[i] = raw[i] ? 1 : 0;
        return;
      }
      case 'U8':
        this.chunks(at, n, 1, (bytes, o) => (out as Int32Array).set(bytes, o));
        return;
      case 'F16':
      case 'BF16': {
        const bits = new Uint32Array(out.buffer, out.byteOffset, n);
        const table = dtype === 'F16' ? halfBits() : null;
        this.chunks(at, n, 2, (half, o) => (table ? decodeF16(half as Uint16Array, bits, o, table) : decodeBF16(half as Uint16Array, bits, o)));
        return;
      }
      case 'I64': {
        const ints = out as Int32Array;
        this.chunks(at, n, 8, (words, o) => {
          // Little-endian words: low then high 32 bits; a value fits int32 when high is low's sign.
          const u32 = words as Uint32Array;
          for (let i = 0; i < u32.length / 2; i++) {
            const lo = u32[2 * i]!;
            const hi = u32[2 * i + 1]!;
            if (hi !== (lo & 0x80000000 ? 0xffffffff : 0)) {
              const v = (BigInt(hi | 0) << 32n) | BigInt(lo);
              const range = 'expected values within int32 range [-2147483648, 2147483647]';
              throw new Error(`${this.source}: tensor ${quote(name)} (I64, shape ${shapeText(shape)}): ${range}, got ${v} at flat index ${first + o + i}`);
            }
            ints[o + i] = lo | 0;
          }
        });
        return;
      }
    }
  }

  /** Fills `into` from file byte `position` on. */
  private read(position: number, into: Uint8Array): void {
    if (into.length === 0) return;
    if (this.bytes) into.set(this.bytes.subarray(position, position + into.length));
    else this.byteSource!.readInto(position, into);
  }

  /**
   * Calls `decode(words, firstElement)` over `count` elements of `size` bytes from `position`,
   * at most {@link CHUNK_ELEMENTS} at a time, with the words in host order (16-bit words for
   * size 2, 32-bit halves for size 8).
   */
  private chunks(position: number, count: number, size: 1 | 2 | 8, decode: (words: Uint8Array | Uint16Array | Uint32Array, first: number) => void): void {
    for (let o = 0; o < count; o += CHUNK_ELEMENTS) {
      const k = Math.min(CHUNK_ELEMENTS, count - o);
      let bytes: Uint8Array;
      const inPlace = this.bytes && LITTLE_ENDIAN_HOST && (this.bytes.byteOffset + position + o * size) % size === 0;
      if (inPlace) {
        bytes = this.bytes!.subarray(position + o * size, position + (o + k) * size);
      } else {
        bytes = scratch(k * size);
        this.read(position + o * size, bytes);
        if (size === 2) swapToHost(bytes, 2);
        else if (size === 8 && !LITTLE_ENDIAN_HOST) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
      }
      const words =
        size === 1 ? bytes : size === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset, k) : new Uint32Array(bytes.buffer, bytes.byteOffset, 2 * k);
      decode(words, o);
    }
  }
}

/**
 * Reads a safetensors file into new tensors (the caller owns and disposes them). F32, F16 and
 * BF16 become `float32` (exact upcasts); I32, U8 and I64 become `int32` (an I64 value outside
 * int32 range throws, naming the tensor and the value); BOOL becomes `bool`. The header is
 * validated first as by {@link parseSafetensorsHeader}; nothing is allocated when it throws.
 * `options.filter` selects tensors: the others are never decoded. To load a large model with
 * bounded memory, read tensor by tensor with {@link SafetensorsFile} instead.
 *
 * @example
 * ```ts
 * const { tensors, metadata } = readSafetensors(readFileSync('model.safetensors'), { source: 'model.safetensors' });
 * module.loadStateDict(tensors);
 * tf.dispose(Object.values(tensors));
 * ```
 */
export function readSafetensors(
  bytes: SafetensorsInput,
  options: ReadSafetensorsOptions = {},
): SafetensorsContents {
  const file = SafetensorsFile.open(bytes, options);
  const names = file.names().filter(options.filter ?? (() => true));
  // Decode everything before creating any tensor, so that a bad value leaks nothing.
  const decoded = names.map((name) => [name, file.readValues(name)] as const);
  const tensors = Object.fromEntries(
    decoded.map(([name, values]) => {
      const { dtype, shape } = file.header.entries[name]!;
      return [name, tf.tensor(values, shape, TF_DTYPES[dtype])];
    }),
  );
  return { tensors, metadata: file.header.metadata };
}

const WRITE_DTYPES: Partial<Record<tf.DataType, SafetensorsDtype>> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/** Options of {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /**
   * How `float32` tensors are stored: `'F32'` (exact), or `'F16'` (half the bytes, each value
   * rounded to the nearest half, ties to even, as `tensor.half()` in PyTorch). Default `'F32'`.
   */
  float32As?: 'F32' | 'F16';
}

/**
 * Serializes tensors to a standard safetensors file (readable by the Python `safetensors`
 * library): `float32` → F32, `int32` → I32, `bool` → BOOL (other dtypes throw). Tensors are
 * stored contiguously in sorted key order, the header JSON is padded with spaces to a multiple of
 * 8 bytes, and `__metadata__` is written only when `metadata` is given. With
 * `{ float32As: 'F16' }` float32 tensors are stored as F16. The tensors are not disposed.
 *
 * @example
 * ```ts
 * const bytes = writeSafetensors(module.stateDict(), { format: 'pt' });
 * writeFileSync('model.safetensors', bytes);
 * ```
 */
export function writeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>, options: WriteSafetensorsOptions = {}): Uint8Array {
  const fail = (message: string): never => {
    throw new Error(`writeSafetensors: ${message}`);
  };
  const float32As = options.float32As ?? 'F32';
  if (float32As !== 'F32' && float32As !== 'F16') fail(`float32As: expected 'F32' or 'F16', got ${show(float32As)}`);
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
    const stored = WRITE_DTYPES[t.dtype] ?? fail(`tensor '${name}': expected dtype float32, int32 or bool, got ${t.dtype}`);
    const dtype = stored === 'F32' ? float32As : stored;
    const values = t.dataSync();
    let chunk: Uint8Array;
    if (dtype === 'F16') {
      chunk = new Uint8Array(values.length * 2);
      const view = new DataView(chunk.buffer);
      for (let i = 0; i < values.length; i++) view.setUint16(2 * i, floatToHalf(values[i] as number), true);
    } else if (dtype === 'BOOL') {
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
