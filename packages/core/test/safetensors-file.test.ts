// Reading safetensors by tensor (SafetensorsFile), loading without initialisation (skipInit),
// and the pathological headers of issue 13 item 5.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import {
  Linear,
  MultiHeadAttention,
  SafetensorsFile,
  parseSafetensorsHeader,
  readSafetensors,
  skipInit,
  writeSafetensors,
  type SafetensorsByteSource,
} from '@vlm/core';

/** A safetensors file from a header (object or raw JSON text) and data bytes. */
function build(header: unknown, data: ArrayLike<number> = []): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(Array.from(data), 8 + json.length);
  return out;
}

/** A byte source over `bytes`. */
const sourceOf = (bytes: Uint8Array): SafetensorsByteSource => ({
  byteLength: bytes.length,
  readInto: (position, into) => into.set(bytes.subarray(position, position + into.length)),
});

/** Exact IEEE half → float, written out independently of the library's table. */
function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

describe('cause 2: F16 and BF16 decode into a preallocated array, by table and by shift, in chunks', () => {
  // Every 16-bit pattern, 40 times over (2.6M elements: past the 2^20-element chunk twice), with
  // an odd header length so that the data is unaligned, from memory and from a byte source.
  const n = 65536 * 40;
  const words = new Uint16Array(n).map((_, i) => i & 0xffff);
  const data = new Uint8Array(words.buffer);
  const header = (dtype: string) => {
    const json = JSON.stringify({ x: { dtype, shape: [n], data_offsets: [0, 2 * n] } });
    return json.length % 2 ? json : `${json} `; // odd length: the data starts at an odd byte
  };
  test.each(['F16', 'BF16'])('%s: all 65,536 values exact, unaligned, across chunks, in memory and from a byte source', (dtype) => {
    const bytes = build(header(dtype), data);
    expect((bytes.length - 2 * n) % 2).toBe(1);
    for (const input of [bytes, sourceOf(bytes)]) {
      const values = SafetensorsFile.open(input).readValues('x') as Float32Array;
      expect(values).toBeInstanceOf(Float32Array);
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      for (let i = 0; i < n; i += 1 + (i > 70000 ? 997 : 0)) {
        const h = i & 0xffff;
        const want = dtype === 'F16' ? half(h) : ((u[0] = h << 16), f[0]!);
        if (Number.isNaN(want)) expect(values[i]).toBeNaN();
        else expect(Object.is(values[i], want) || values[i] === want, `${dtype} 0x${h.toString(16)}`).toBe(true);
      }
    }
  });

  test('F16 decodes at least 3× faster than element by element in JavaScript (the old way)', () => {
    const m = 1 << 20; // 2 MB of F16
    const bytes = build({ x: { dtype: 'F16', shape: [m], data_offsets: [0, 2 * m] } }, new Uint8Array(2 * m).map((_, i) => (i * 7919) & 0xff));
    const file = SafetensorsFile.open(bytes);
    const time = (f: () => unknown) => {
      f(); // warm-up
      const started = performance.now();
      for (let r = 0; r < 3; r++) f();
      return performance.now() - started;
    };
    const ours = time(() => file.readValues('x'));
    const raw = new Uint16Array(bytes.slice(bytes.length - 2 * m).buffer);
    const old = time(() => Float32Array.from(raw, half));
    const values = file.readValues('x');
    for (let i = 0; i < m; i += 4099) expect(values[i]).toBe(Math.fround(half(raw[i]!)));
    expect(old / ours).toBeGreaterThan(3);
  });
});

describe('SafetensorsFile: header first, then only the tensors asked for', () => {
  test('a byte source is read for the header and the one tensor asked for, nothing else', () => {
    const bytes = writeSafetensors({ a: tf.ones([1000]), b: tf.fill([3], 7), c: tf.zeros([5000]) });
    const reads: Array<[number, number]> = [];
    const file = SafetensorsFile.open({ byteLength: bytes.length, readInto: (p, into) => (reads.push([p, into.length]), into.set(bytes.subarray(p, p + into.length))) });
    const headerEnd = file.header.dataStart;
    expect(reads.reduce((s, [, l]) => s + l, 0)).toBe(headerEnd);
    const b = file.readTensor('b');
    expect(Array.from(b.dataSync())).toEqual([7, 7, 7]);
    expect(reads.reduce((s, [, l]) => s + l, 0)).toBe(headerEnd + 12);
    expect(() => file.readTensor('zz')).toThrow(/safetensors: no tensor named 'zz'/);
    b.dispose();
  });

  test('readTensor(name, { transpose: true }) decodes F32, F16 and BF16 straight into [cols, rows], bit for bit, in memory (aligned or not) and from a byte source', () => {
    // 3 × 700,001 → blocks of one row (2^20 / cols); 133 × 7 → two 64-row blocks and a part, 4 + 3 columns; 70 × 768;
    // 1400 × 768 → two reads (1344 rows, then 56).
    // The third number: reads of a byte source, at most 2^20 elements each (not one per 64-row block).
    for (const [rows, cols, expectedReads] of [[3, 700_001, 3], [133, 7, 1], [70, 768, 1], [1400, 768, 2]] as const) {
      const n = rows * cols;
      // every 16-bit pattern shows up (NaN payloads, ±Inf, subnormals, -0), and F32 words with them in both halves
      const words = new Uint16Array(2 * n).map((_, i) => (i * 7919) & 0xffff);
      for (const dtype of ['F32', 'F16', 'BF16'] as const) {
        const size = dtype === 'F32' ? 4 : 2;
        const data = new Uint8Array(words.buffer, 0, n * size);
        const header = { w: { dtype, shape: [rows, cols], data_offsets: [0, n * size] } };
        const aligned = build(header, data);
        const unaligned = new Uint8Array(aligned.length + 1).subarray(1); // data at an odd address
        unaligned.set(aligned);
        let reads = 0;
        const counting: SafetensorsByteSource = { byteLength: aligned.length, readInto: (p, into) => ((reads += 1), into.set(aligned.subarray(p, p + into.length))) };
        for (const input of [aligned, unaligned, counting]) {
          const file = SafetensorsFile.open(input);
          reads = 0;
          const t = file.readTensor('w', { transpose: true });
          if (input === counting) expect(reads).toBe(expectedReads);
          const plain = file.readTensor('w');
          expect(t.shape).toEqual([cols, rows]);
          const got = new Uint32Array((t.dataSync() as Float32Array).slice().buffer);
          const want = new Uint32Array((plain.dataSync() as Float32Array).slice().buffer);
          let bad = -1;
          for (let c = 0; c < cols && bad < 0; c++) for (let r = 0; r < rows; r++) if (got[c * rows + r] !== want[r * cols + c]) { bad = c * rows + r; break; }
          expect(bad).toBe(-1);
          tf.dispose([t, plain]);
        }
      }
    }
    expect(() => SafetensorsFile.open(writeSafetensors({ v: tf.zeros([3]) })).readTensor('v', { transpose: true })).toThrow(/transpose needs a 2-D float tensor, got F32 \[3\]/);
  });

  test('readSafetensors with a filter decodes only the selected tensors', () => {
    const bytes = writeSafetensors({ 'vision.w': tf.ones([4]), 'lm.w': tf.zeros([2]) });
    const { tensors } = readSafetensors(bytes, { filter: (k) => k.startsWith('lm.') });
    expect(Object.keys(tensors)).toEqual(['lm.w']);
    tf.dispose(Object.values(tensors));
  });
});

describe('skipInit and loadStateDictFrom', () => {
  test('placeholders hold no memory, throw when read, and take the loaded tensors data without a copy', () => {
    const before = tf.memory();
    const mha = skipInit(() => new MultiHeadAttention({ embedDim: 64, numHeads: 4 }));
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(mha.stateDictShapes()).toEqual({ in_proj_weight: [192, 64], in_proj_bias: [192], 'out_proj.weight': [64, 64], 'out_proj.bias': [64] });
    expect(() => mha.stateDict()).toThrow(/MultiHeadAttention: weight 'in_proj_weight' \[64, 192\] has no value/);
    const fresh = new MultiHeadAttention({ embedDim: 64, numHeads: 4 }); // initialised as before: out_proj.bias zeros
    expect(Array.from(fresh.outProj.bias!.dataSync()).every((v) => v === 0)).toBe(true);
    const dict = fresh.stateDict();
    const made: string[] = [];
    mha.loadStateDictFrom({
      shapes: Object.fromEntries(Object.entries(dict).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype }])),
      read: (k) => (made.push(k), tf.clone(dict[k]!)),
    });
    expect(made.sort()).toEqual(Object.keys(dict).sort());
    const x = tf.randomNormal([2, 3, 64]);
    const [a, b] = [fresh.forward(x, x, x), mha.forward(x, x, x)];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    tf.dispose([a, b, x, ...Object.values(dict)]);
    fresh.dispose();
    mha.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
  });

  test('loadStateDictFrom checks every key and shape before reading anything', () => {
    const fc = skipInit(() => new Linear({ inFeatures: 3, outFeatures: 2 }));
    let reads = 0;
    const read = () => (reads++, tf.zeros([2, 3]));
    expect(() => fc.loadStateDictFrom({ shapes: { weight: { shape: [3, 2], dtype: 'float32' } }, read })).toThrow(
      /Missing key\(s\) in state_dict:\n {2}bias[\s\S]*weight: expected shape \[2, 3\], got \[3, 2\]/,
    );
    expect(reads).toBe(0);
    fc.dispose();
  });
});

describe('pathological headers (issue 13 item 5): one clear Error naming the file', () => {
  const source = 'bad.safetensors';
  const expectClean = (f: () => unknown, message: RegExp) => {
    let error: unknown;
    try {
      f();
    } catch (e) {
      error = e;
    }
    expect(error, 'expected an Error').toBeInstanceOf(Error);
    expect((error as Error).constructor).toBe(Error); // not a bare RangeError / TypeError
    expect((error as Error).message.startsWith(`${source}: `)).toBe(true);
    expect((error as Error).message.length).toBeLessThan(600);
    expect((error as Error).message).toMatch(message);
  };

  test('a header nested 5,000 levels deep', () => {
    const deep = `{"x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    expectClean(() => readSafetensors(build(deep), { source }), /nests deeper than 64 levels|not valid UTF-8 JSON/);
    const deepObject = `{"x":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}}`;
    expectClean(() => readSafetensors(build(deepObject, [0, 0, 0, 0]), { source }), /nests deeper than 64 levels|not valid UTF-8 JSON/);
  });

  test('huge names, shapes and values are quoted only in part', () => {
    const name = 'n'.repeat(5_000_000);
    expectClean(() => readSafetensors(build({ [name]: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, new Array(8).fill(0)), { source }), /tensor 'nnnn.*… \(5000000 characters\)'.*needs 4 bytes/);
    const shape = new Array(1_000_000).fill(1);
    expectClean(() => readSafetensors(build({ x: { dtype: 'F32', shape, data_offsets: [0, 8] } }, new Array(8).fill(0)), { source }), /shape \[1,1,1.*needs 4 bytes/);
    expectClean(() => readSafetensors(build({ x: { dtype: 'Q'.repeat(1_000_000), shape: [], data_offsets: [0, 0] } }), { source }), /expected dtype F32.*got "QQQ.*characters/);
  });

  test('fileLength that is not a byte count', () => {
    const bytes = writeSafetensors({ a: tf.zeros([1]) });
    for (const fileLength of [NaN, -1, 1.5, Infinity]) {
      expectClean(() => parseSafetensorsHeader(bytes, { source, fileLength }), /fileLength: expected a non-negative integer number of bytes, got/);
    }
  });

  test('duplicate keys are rejected, at the top level and inside an entry (the Rust reference rejects them)', () => {
    const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    expectClean(() => readSafetensors(build(`{"a":${entry},"a":${entry}}`, [0, 0, 0, 0]), { source }), /header names 'a' twice: expected unique keys/);
    expectClean(() => readSafetensors(build(`{"a":${entry},"\\u0061":${entry}}`, [0, 0, 0, 0]), { source }), /header names 'a' twice/);
    expectClean(
      () => readSafetensors(build('{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), { source }),
      /header names 'dtype' twice \(at depth 2\)/,
    );
    expectClean(() => readSafetensors(build('{"__metadata__":{"k":"1","k":"2"}}'), { source }), /header names 'k' twice/);
    // The same name as a value, or in two different entries, is fine.
    const ok = readSafetensors(build(`{"a":${entry},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"a":"a"}}`, new Array(8).fill(0)), { source });
    expect(Object.keys(ok.tensors)).toEqual(['a', 'b']);
    tf.dispose(Object.values(ok.tensors));
  });

  test('absurd zero-size shapes (more than 2^53 elements but for a zero) are rejected', () => {
    const big = 2 ** 52;
    expectClean(() => readSafetensors(build({ x: { dtype: 'F32', shape: [big, big, 0], data_offsets: [0, 0] } }), { source }), /has more than 2\^53 elements/);
    const ok = readSafetensors(build({ x: { dtype: 'F32', shape: [0, 3], data_offsets: [0, 0] } }), { source });
    expect(ok.tensors.x!.shape).toEqual([0, 3]);
    ok.tensors.x!.dispose();
  });

  test('a header length over the format limit of 100 MB', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 200_000_000n, true);
    expectClean(() => parseSafetensorsHeader(bytes.subarray(0, 8), { source, fileLength: 300_000_000 }), /header length .* is 200000000 bytes: expected at most 100000000/);
  });
});
