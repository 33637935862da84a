import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { parseSafetensorsHeader, readSafetensors, writeSafetensors } from '../src/safetensors';

/** A safetensors file from a header (object or raw JSON text) and data bytes, built byte by byte. */
function build(header: unknown, data: ArrayLike<number> = [], headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(Array.from(data), 8 + json.length);
  return out;
}

/** Little-endian bytes of 16-bit words. */
const u16 = (...words: number[]): number[] => words.flatMap((w) => [w & 0xff, w >> 8]);
/** Little-endian bytes of 64-bit integers. */
function i64(...values: bigint[]): number[] {
  const view = new DataView(new ArrayBuffer(8 * values.length));
  values.forEach((v, i) => view.setBigInt64(8 * i, v, true));
  return [...new Uint8Array(view.buffer)];
}
const f32 = (...values: number[]): number[] => [...new Uint8Array(new Float32Array(values).buffer)];

describe('writeSafetensors / readSafetensors round trip', () => {
  test('every writable dtype, scalars and zero-size tensors, values bit-exact', () => {
    const input: Record<string, tf.Tensor> = {
      'b.weight': tf.tensor([[1.5, -0, NaN], [Infinity, -Infinity, 3.4028234663852886e38]], [2, 3], 'float32'),
      'a.ids': tf.tensor([-2147483648, 2147483647, 0, 7], [4], 'int32'),
      'c.mask': tf.tensor([[true, false], [false, true]], [2, 2], 'bool'),
      'scalar.f': tf.scalar(-0.25, 'float32'),
      'scalar.i': tf.scalar(-9, 'int32'),
      'scalar.b': tf.scalar(true, 'bool'),
      'empty.f': tf.zeros([0, 3], 'float32'),
      'empty.i': tf.zeros([0], 'int32'),
      'empty.b': tf.zeros([2, 0], 'bool'),
    };
    const bytes = writeSafetensors(input, { format: 'pt', note: 'ünïcode ✓' });
    const { tensors, metadata } = readSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', note: 'ünïcode ✓' });
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(input).sort());
    for (const [name, t] of Object.entries(input)) {
      expect(tensors[name].dtype, name).toBe(t.dtype);
      expect(tensors[name].shape, name).toEqual(t.shape);
      expect([...tensors[name].dataSync()], name).toEqual([...t.dataSync()]); // toEqual tells -0 from 0, NaN equals NaN
    }
    tf.dispose([...Object.values(input), ...Object.values(tensors)]);
  });

  test('layout: padded header starting with {, sorted contiguous keys, __metadata__ only when given', () => {
    const input = { z: tf.tensor([1, 2, 3], [3], 'int32'), a: tf.scalar(true, 'bool'), m: tf.ones([2, 2]) };
    for (const metadata of [undefined, { k: 'v' }]) {
      const bytes = writeSafetensors(input, metadata);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(text[0]).toBe('{');
      expect(text.trimEnd().length).toBeLessThanOrEqual(n);
      expect(text.includes('__metadata__')).toBe(metadata !== undefined);
      const header = parseSafetensorsHeader(bytes);
      expect(Object.keys(header.entries)).toEqual(['a', 'm', 'z']);
      expect(header.entries).toEqual({
        a: { dtype: 'BOOL', shape: [], dataOffsets: [0, 1] },
        m: { dtype: 'F32', shape: [2, 2], dataOffsets: [1, 17] },
        z: { dtype: 'I32', shape: [3], dataOffsets: [17, 29] },
      });
      expect(header.metadata).toEqual(metadata ?? {});
      expect(header.dataStart).toBe(8 + n);
      expect(bytes.length).toBe(8 + n + 29);
    }
    tf.dispose(Object.values(input));
  });

  test('an empty dict is a valid file', () => {
    const bytes = writeSafetensors({});
    expect(new TextDecoder().decode(bytes.subarray(8)).trimEnd()).toBe('{}');
    expect(readSafetensors(bytes)).toEqual({ tensors: {}, metadata: {} });
  });

  test('the writer rejects other dtypes, bad metadata and the reserved name', () => {
    const s = tf.tensor(['x']);
    const ok = tf.scalar(1);
    expect(() => writeSafetensors({ s })).toThrow(/tensor 's': expected dtype float32, int32 or bool, got string/);
    expect(() => writeSafetensors({ ok }, { n: 1 } as unknown as Record<string, string>)).toThrow(
      /metadata\['n'\]: expected a string, got 1/,
    );
    expect(() => writeSafetensors({ __metadata__: ok })).toThrow(/'__metadata__' is reserved/);
    tf.dispose([s, ok]);
  });
});

describe('readSafetensors of hand-built files', () => {
  test('F16 upcasts exactly: normals, subnormals, max, ±Inf, -0, NaN', () => {
    const words = [0x3c00, 0xc000, 0x3555, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x0000, 0x7e00, 0x8001];
    const want = [1, -2, 0.333251953125, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, Infinity, -Infinity, -0, 0, NaN, -(2 ** -24)];
    const { tensors } = readSafetensors(build({ h: { dtype: 'F16', shape: [13], data_offsets: [0, 26] } }, u16(...words)));
    expect(tensors.h.dtype).toBe('float32');
    expect([...tensors.h.dataSync()]).toEqual(want);
    expect(Object.is(tensors.h.dataSync()[9], -0)).toBe(true);
    tf.dispose(Object.values(tensors));
  });

  test('BF16 upcasts exactly (upper 16 bits of a float32)', () => {
    const words = [0x3f80, 0xc040, 0x4049, 0x7f80, 0xff80, 0x8000, 0x7fc0, 0x0001, 0x7f7f];
    const want = [1, -3, 3.140625, Infinity, -Infinity, -0, NaN, 2 ** -133, 0x7f7f0000];
    const bytes = build({ b: { dtype: 'BF16', shape: [3, 3], data_offsets: [0, 18] } }, u16(...words));
    const { tensors } = readSafetensors(bytes);
    expect(tensors.b.dtype).toBe('float32');
    expect(tensors.b.shape).toEqual([3, 3]);
    const got = tensors.b.dataSync();
    expect(Object.is(got[5], -0)).toBe(true);
    expect(got[8]).toBe(new Float32Array(new Uint32Array([0x7f7f0000]).buffer)[0]);
    expect([...got.slice(0, 8)]).toEqual(want.slice(0, 8));
    tf.dispose(Object.values(tensors));
  });

  test('I64 within int32 range becomes int32; U8 becomes int32; BOOL becomes bool; unaligned data', () => {
    // u8 first (3 bytes) leaves the I64 and F32 data unaligned, and the header length is odd.
    const header = {
      __metadata__: { who: 'hand' },
      u: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      l: { dtype: 'I64', shape: [5], data_offsets: [3, 43] },
      f: { dtype: 'F32', shape: [2, 1], data_offsets: [43, 51] },
      t: { dtype: 'BOOL', shape: [3], data_offsets: [51, 54] },
      s: { dtype: 'I32', shape: [], data_offsets: [54, 58] },
    };
    const data = [0, 255, 7, ...i64(0n, -1n, 2147483647n, -2147483648n, 5n), ...f32(0.1, -2.5), 1, 0, 2, 0xfe, 0xff, 0xff, 0xff];
    const { tensors, metadata } = readSafetensors(build(header, data).buffer);
    expect(metadata).toEqual({ who: 'hand' });
    expect([tensors.u.dtype, [...tensors.u.dataSync()]]).toEqual(['int32', [0, 255, 7]]);
    expect([tensors.l.dtype, [...tensors.l.dataSync()]]).toEqual(['int32', [0, -1, 2147483647, -2147483648, 5]]);
    expect([tensors.f.dtype, tensors.f.shape, [...tensors.f.dataSync()]]).toEqual(['float32', [2, 1], [Math.fround(0.1), -2.5]]);
    expect([tensors.t.dtype, [...tensors.t.dataSync()]]).toEqual(['bool', [1, 0, 1]]);
    expect([tensors.s.dtype, tensors.s.shape, [...tensors.s.dataSync()]]).toEqual(['int32', [], [-2]]);
    tf.dispose(Object.values(tensors));
  });

  test('zero-size F16/I64/U8 tensors and a Node Buffer that is a view into a larger pool', () => {
    const file = build({
      a: { dtype: 'F16', shape: [0, 4], data_offsets: [0, 0] },
      b: { dtype: 'I64', shape: [3, 0], data_offsets: [0, 0] },
      c: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
      d: { dtype: 'BF16', shape: [0], data_offsets: [2, 2] },
    }, [9, 8]);
    const pooled = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(file)]).subarray(3);
    const { tensors } = readSafetensors(pooled);
    expect(tensors.a.shape).toEqual([0, 4]);
    expect(tensors.b.shape).toEqual([3, 0]);
    expect(tensors.d.shape).toEqual([0]);
    expect([...tensors.c.dataSync()]).toEqual([9, 8]);
    tf.dispose(Object.values(tensors));
  });

  test('I64 values outside int32 range throw, naming the tensor and the value, and allocate nothing', () => {
    const before = tf.memory().numTensors;
    const ok = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
    const big = build({ ok, big: { dtype: 'I64', shape: [2], data_offsets: [4, 20] } }, [...f32(1), ...i64(1n, 2147483648n)]);
    expect(() => readSafetensors(big, { source: 'w.safetensors' })).toThrow(
      /^w\.safetensors: tensor 'big' \(I64, shape \[2\]\): expected values within int32 range .*, got 2147483648 at flat index 1$/,
    );
    const small = build({ small: { dtype: 'I64', shape: [], data_offsets: [0, 8] } }, i64(-2147483649n));
    expect(() => readSafetensors(small)).toThrow(/tensor 'small'.*got -2147483649 at flat index 0/);
    const huge = build({ huge: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, i64(-(2n ** 63n)));
    expect(() => readSafetensors(huge)).toThrow(/tensor 'huge'.*got -9223372036854775808/);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('tf.memory().numTensors is back where it started after disposing what was read', () => {
    const input = { w: tf.randomNormal([4, 5]), i: tf.range(0, 6, 1, 'int32'), m: tf.scalar(false, 'bool') };
    const bytes = writeSafetensors(input);
    tf.dispose(Object.values(input));
    const before = tf.memory().numTensors;
    const { tensors } = readSafetensors(bytes);
    expect(tf.memory().numTensors).toBe(before + 3);
    tf.dispose(Object.values(tensors));
    expect(tf.memory().numTensors).toBe(before);
  });

  test('parseSafetensorsHeader needs only the header bytes when given the file length', () => {
    const file = build({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1, 2));
    const dataStart = file.length - 8;
    const header = parseSafetensorsHeader(file.subarray(0, dataStart), { fileLength: file.length });
    expect(header).toEqual({ entries: { w: { dtype: 'F32', shape: [2], dataOffsets: [0, 8] } }, metadata: {}, dataStart });
    expect(() => parseSafetensorsHeader(file.subarray(0, 12), { fileLength: file.length })).toThrow(
      new RegExp(`expected the first ${dataStart} bytes of the file \\(the whole header\\), got 12`),
    );
  });

  test('a tensor named __proto__ stays a plain key', () => {
    const { tensors } = readSafetensors(build('{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [3]));
    expect(Object.keys(tensors)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
    tf.dispose(Object.values(tensors));
  });
});

describe('corrupt files throw a specific error', () => {
  const f32Entry = (begin: number, end: number, shape = [(end - begin) / 4]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['shorter than 8 bytes', new Uint8Array([1, 0, 0]), /file too short: expected at least 8 bytes \(the header length\), got 3/],
    ['header length past the end', build({}, [], 100n), /header length \(bytes 0\.\.7\) runs past the end of the file: expected at most 2, got 100/],
    ['header length near 2^64', build({}, [], 2n ** 64n - 1n), /expected at most 2, got 18446744073709551615/],
    ['header not UTF-8', build('{"ab":{}}').map((b, i) => (i === 11 ? 0xff : b)), /header is not valid UTF-8 JSON: .*encoded data was not valid/],
    ['header not JSON', build('{"w": {"dtype": "F32",'), /header is not valid UTF-8 JSON: .+/],
    ['header with a byte-order mark', build('\ufeff{}'), /header is not valid UTF-8 JSON/],
    ['header a JSON array', build('[]'), /header: expected a JSON object, got an array/],
    ['header JSON null', build('null'), /header: expected a JSON object, got null/],
    ['entry not an object', build({ w: [1, 2] }), /tensor 'w': expected an object \{dtype, shape, data_offsets\}, got \[1,2\]/],
    ['unknown dtype', build({ w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Array(8).fill(0)),
      /tensor 'w': expected dtype F32, F16, BF16, I32, I64, U8, BOOL, got "F64"/],
    ['missing dtype', build({ w: { shape: [1], data_offsets: [0, 4] } }, f32(1)), /tensor 'w': expected dtype .*, got nothing/],
    ['negative shape', build({ w: f32Entry(0, 4, [-1]) }, f32(1)),
      /tensor 'w': expected shape to be an array of non-negative integers, got \[-1\]/],
    ['fractional shape', build({ w: f32Entry(0, 4, [0.5]) }, f32(1)), /tensor 'w': expected shape to be an array of non-negative integers, got \[0\.5\]/],
    ['shape not an array', build({ w: { dtype: 'F32', shape: 4, data_offsets: [0, 4] } }, f32(1)),
      /tensor 'w': expected shape to be an array of non-negative integers, got 4/],
    ['data_offsets of three numbers', build({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }, f32(1)),
      /tensor 'w': expected data_offsets \[begin, end\] of non-negative integers with begin <= end, got \[0,4,8\]/],
    ['data_offsets with begin > end', build({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32(1)),
      /tensor 'w': expected data_offsets .* with begin <= end, got \[4,0\]/],
    ['data_offsets not integers', build({ w: { dtype: 'F32', shape: [1], data_offsets: ['0', 4] } }, f32(1)),
      /tensor 'w': expected data_offsets .*, got \["0",4\]/],
    ['offsets past the end of the data buffer', build({ w: f32Entry(0, 8) }, f32(1)),
      /tensor 'w': data_offsets \[0,8\] run past the end of the data buffer: expected end <= 4, got 8/],
    ['byte size disagrees with shape x dtype', build({ w: f32Entry(0, 8, [3]) }, f32(1, 2)),
      /tensor 'w': shape \[3\] of F32 needs 12 bytes, got data_offsets \[0,8\] \(8 bytes\)/],
    ['overlapping tensors', build({ a: f32Entry(0, 8), b: f32Entry(4, 12) }, f32(1, 2, 3)),
      /tensor 'b' \(bytes 4\.\.12\) overlaps tensor 'a' \(which ends at byte 8\)/],
    ['a zero-size tensor inside another', build({ a: f32Entry(0, 8), z: f32Entry(4, 4, [0]) }, f32(1, 2)),
      /tensor 'z' \(bytes 4\.\.4\) overlaps tensor 'a'/],
    ['a gap between tensors', build({ a: f32Entry(0, 4), b: f32Entry(8, 12) }, f32(1, 2, 3)),
      /data buffer bytes 4\.\.8 belong to no tensor: expected tensor 'b' to begin at 4, got 8/],
    ['a gap at the start', build({ b: f32Entry(4, 8) }, f32(1, 2)), /data buffer bytes 0\.\.4 belong to no tensor/],
    ['trailing bytes after the last tensor', build({ a: f32Entry(0, 4) }, [...f32(1), 0, 0]),
      /data buffer bytes 4\.\.6 belong to no tensor: expected the tensors to cover all 6 bytes, got 4/],
    ['data but no tensors', build({}, [1]), /data buffer bytes 0\.\.1 belong to no tensor/],
    ['__metadata__ not an object', build({ __metadata__: ['x'] }), /__metadata__: expected an object of strings, got \["x"\]/],
    ['__metadata__ with a non-string value', build({ __metadata__: { epoch: 3 } }), /__metadata__\['epoch'\]: expected a string, got 3/],
  ];
  test.each(cases)('%s', (_, bytes, message) => {
    expect(() => readSafetensors(bytes)).toThrow(message);
    expect(() => parseSafetensorsHeader(bytes)).toThrow(message);
  });

  test('errors start with the source name when given, with "safetensors" otherwise', () => {
    const bytes = build({ w: f32Entry(0, 8, [3]) }, f32(1, 2));
    expect(() => readSafetensors(bytes, { source: 'model.safetensors' })).toThrow(/^model\.safetensors: tensor 'w': shape/);
    expect(() => parseSafetensorsHeader(bytes, { source: 'x.st' })).toThrow(/^x\.st: tensor 'w'/);
    expect(() => readSafetensors(bytes)).toThrow(/^safetensors: tensor 'w'/);
  });
});

describe('writeSafetensors with float32As: F16', () => {
  test('rounds to the nearest half (ties to even), keeps ±0/±Inf/NaN, and reads back exactly', () => {
    const before = tf.memory().numTensors;
    // value → expected half bits
    const cases: Array<[number, number]> = [
      [1, 0x3c00], [-2, 0xc000], [1 / 3, 0x3555], [0, 0x0000], [-0, 0x8000],
      [1 + 2 ** -11, 0x3c00], // a tie: to the even neighbour (down)
      [1 + 3 * 2 ** -11, 0x3c02], // a tie: to the even neighbour (up)
      [65504, 0x7bff], [65520, 0x7c00], [-1e6, 0xfc00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], [2 ** -26, 0x0000], [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400],
    ];
    const t = tf.tensor1d([...cases.map(([v]) => v), NaN]);
    const other = tf.tensor1d([7], 'int32');
    const bytes = writeSafetensors({ w: t, n: other }, { format: 'pt' }, { float32As: 'F16' });
    const header = parseSafetensorsHeader(bytes);
    expect(header.entries.w!.dtype).toBe('F16');
    expect(header.entries.n!.dtype).toBe('I32'); // only float32 tensors change
    const start = header.dataStart + header.entries.w!.dataOffsets[0];
    const view = new DataView(bytes.buffer, bytes.byteOffset + start, (cases.length + 1) * 2);
    expect(cases.map((_, i) => view.getUint16(2 * i, true))).toEqual(cases.map(([, h]) => h));
    expect(view.getUint16(2 * cases.length, true) & 0x7c00).toBe(0x7c00);
    expect(view.getUint16(2 * cases.length, true) & 0x3ff).not.toBe(0); // NaN
    const { tensors } = readSafetensors(bytes);
    const back = tensors.w!.dataSync();
    expect(back[2]).toBe(Math.fround(0.333251953125)); // 0x3555 exactly
    expect(Number.isNaN(back[cases.length])).toBe(true);
    tf.dispose([t, other, ...Object.values(tensors)]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('an unknown float32As is an error', () => {
    const t = tf.tensor1d([1]);
    expect(() => writeSafetensors({ t }, undefined, { float32As: 'BF16' as 'F16' })).toThrow(/float32As: expected 'F32' or 'F16', got/);
    t.dispose();
  });
});
