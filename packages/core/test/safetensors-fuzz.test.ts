// Property-based fuzzing of the safetensors reader and header parser (issue 13): > 10,000
// generated files per run, seeded (VLM_FUZZ_SEED overrides the seed; a failure prints the seed
// and the shrunk counterexample). Every input either reads correctly or throws one plain
// `Error` that starts with the file name and stays short; nothing else (RangeError, TypeError,
// a hang, a leaked tensor) is accepted.
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { SafetensorsFile, parseSafetensorsHeader, readSafetensors, writeSafetensors, type SafetensorsByteSource } from '@vlm/core';

const SEED = Number(process.env.VLM_FUZZ_SEED ?? 20261204);
const SOURCE = 'fuzz.safetensors';
const DTYPES = ['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'BOOL'] as const;
const SIZES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, BOOL: 1 };
let generated = 0;

/** A safetensors file from header text and data bytes. */
function build(headerText: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const sourceOf = (bytes: Uint8Array): SafetensorsByteSource => ({
  byteLength: bytes.length,
  readInto: (position, into) => into.set(bytes.subarray(position, position + into.length)),
});

type Outcome = { ok: true; tensors: Record<string, { dtype: string; shape: number[]; values: number[] }> } | { ok: false; message: string };

/**
 * Reads `input` and checks the contract: a clean read (no tensor leaked) or a plain Error that
 * names the file and is bounded. Returns what happened, for comparisons.
 */
function readChecked(input: Uint8Array | SafetensorsByteSource): Outcome {
  generated++;
  const before = tf.memory().numTensors;
  try {
    const { tensors } = readSafetensors(input, { source: SOURCE });
    const out = Object.fromEntries(
      Object.entries(tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, values: Array.from(t.dataSync()) }]),
    );
    tf.dispose(Object.values(tensors));
    expect(tf.memory().numTensors).toBe(before);
    return { ok: true, tensors: out };
  } catch (e) {
    expect(tf.memory().numTensors, 'a failed read leaked tensors').toBe(before);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).constructor, `not a plain Error: ${String(e)}`).toBe(Error);
    const message = (e as Error).message;
    expect(message.startsWith(`${SOURCE}: `), message.slice(0, 200)).toBe(true);
    expect(message.length, message.slice(0, 200)).toBeLessThan(1000);
    return { ok: false, message };
  }
}

// --- Generators -----------------------------------------------------------------------------

const tensorName = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', '__metadata__', 'a.b.c', ''),
  fc.string({ unit: 'binary', maxLength: 6 }),
);

/** A valid header + data: tensors laid out contiguously in a shuffled order. */
const validFile = fc
  .uniqueArray(
    fc.record({
      name: tensorName.filter((n) => n !== '__metadata__'),
      dtype: fc.constantFrom(...DTYPES),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    }),
    { selector: (t) => t.name, maxLength: 5 },
  )
  .chain((tensors) =>
    fc.record({
      tensors: fc.constant(tensors),
      order: fc.shuffledSubarray(tensors.map((_, i) => i), { minLength: tensors.length, maxLength: tensors.length }),
      metadata: fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }), { nil: undefined }),
      seedBytes: fc.uint8Array({ minLength: 0, maxLength: 64 }),
      padding: fc.integer({ min: 0, max: 9 }),
    }),
  )
  .map(({ tensors, order, metadata, seedBytes, padding }) => {
    const header: Record<string, unknown> = {};
    if (metadata) header.__metadata__ = metadata;
    const sizes = tensors.map((t) => t.shape.reduce((a, d) => a * d, 1) * SIZES[t.dtype]!);
    const offsets: number[] = [];
    let at = 0;
    for (const i of order) {
      offsets[i] = at;
      at += sizes[i]!;
    }
    // defineProperty: a tensor named __proto__ is an own key, as in the file.
    tensors.forEach((t, i) =>
      Object.defineProperty(header, t.name, {
        value: { dtype: t.dtype, shape: t.shape, data_offsets: [offsets[i]!, offsets[i]! + sizes[i]!] },
        enumerable: true,
        writable: true,
        configurable: true,
      }),
    );
    // I64 values within int32 most of the time: sign-extend the low word unless the seed byte says otherwise.
    const data = new Uint8Array(at).map((_, i) => seedBytes.length ? seedBytes[i % seedBytes.length]! ^ (i * 31) : i);
    return { tensors, header, data, text: JSON.stringify(header) + ' '.repeat(padding) };
  });

/** Hostile JSON values for any header field. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(NaN, -1, 1.5, 2 ** 53, 2 ** 64, -0, 1e308, '', 'F32', [], {}, null, true),
  fc.array(fc.oneof(fc.integer(), fc.constantFrom(2 ** 53, 2 ** 60, -1, 0.5, 0)), { maxLength: 5 }),
);

/** Structured mutations of a valid header: the cases of issue 13 item 5 and their neighbours. */
const mutatedText = fc
  .tuple(validFile, fc.nat(), fc.nat(), hostileValue, fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra'))
  .chain(([file, pick, depth, value, field]) => {
    const names = Object.keys(file.header).filter((k) => k !== '__metadata__');
    const name = names.length ? names[pick % names.length]! : 'x';
    const mutations: Array<fc.Arbitrary<string>> = [
      // a field replaced by a hostile value
      fc.constant(JSON.stringify({ ...file.header, [name]: { ...(file.header[name] as object), [field]: value } })),
      // a whole entry replaced
      fc.constant(JSON.stringify({ ...file.header, [name]: value })),
      // a duplicate key (same or different entry)
      fc.constant(`${file.text.replace(/}\s*$/, '')}${names.length ? ',' : ''}${JSON.stringify(name)}:${JSON.stringify(file.header[name] ?? {})}}`),
      // deep nesting (up to 5,000 levels) in a field or as the header
      fc.constant(`{"${name}":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":${'['.repeat(2 + (depth % 5000))}${']'.repeat(2 + (depth % 5000))}}}`),
      fc.constant(`${'{"a":'.repeat(1 + (depth % 3000))}1${'}'.repeat(1 + (depth % 3000))}`),
      // absurd shapes, zero-size or not
      fc.constant(JSON.stringify({ [name]: { dtype: 'F32', shape: [0, 2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 0] } })),
      fc.constant(JSON.stringify({ [name]: { dtype: 'U8', shape: [2 ** 53 + 2], data_offsets: [0, 0] } })),
      // huge names and values (messages must stay bounded)
      fc.constant(JSON.stringify({ [name.repeat(1 + (depth % 50)) + 'n'.repeat(depth % 200_000)]: value })),
      // non-JSON, truncated, not an object
      fc.constant(file.text.slice(0, pick % (file.text.length + 1))),
      fc.constant(JSON.stringify(value)),
    ];
    return fc.tuple(fc.oneof(...mutations), fc.constant(file.data));
  });

// --- Properties -----------------------------------------------------------------------------

const RUNS = { arbitrary: 3000, valid: 2500, mutated: 4000, truncated: 1000, sources: 600 };

describe(`safetensors fuzzing (fast-check, seed ${SEED}, ${Object.values(RUNS).reduce((a, b) => a + b, 0)} inputs)`, () => {
  test('arbitrary bytes (with a plausible header length or not): a clean Error or a correct read', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.option(fc.nat({ max: 120 }), { nil: undefined }), (body, headerLength) => {
        const bytes = new Uint8Array(8 + body.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(headerLength ?? body.length), true);
        bytes.set(body, 8);
        readChecked(bytes);
        readChecked(body); // no length prefix at all
      }),
      { seed: SEED, numRuns: RUNS.arbitrary },
    );
  });

  test('valid files read back exactly what they hold, in any layout order, with or without metadata', () => {
    fc.assert(
      fc.property(validFile, (file) => {
        const outcome = readChecked(build(file.text, file.data));
        const dataStart = 8 + new TextEncoder().encode(file.text).length;
        if (!outcome.ok) {
          // Only an I64 value outside int32 may fail a valid file.
          expect(outcome.message).toMatch(/\(I64, shape .*expected values within int32 range/);
          return;
        }
        expect(Object.keys(outcome.tensors).sort()).toEqual(file.tensors.map((t) => t.name).sort());
        const bytes = build(file.text, file.data);
        for (const t of file.tensors) {
          const got = outcome.tensors[t.name]!;
          expect(got.shape).toEqual(t.shape);
          const [begin] = (file.header[t.name] as { data_offsets: [number, number] }).data_offsets;
          const view = new DataView(bytes.buffer, dataStart + begin);
          got.values.forEach((v, i) => {
            const want = {
              F32: () => view.getFloat32(4 * i, true),
              I32: () => view.getInt32(4 * i, true),
              I64: () => Number(view.getBigInt64(8 * i, true)),
              U8: () => view.getUint8(i),
              BOOL: () => (view.getUint8(i) ? 1 : 0),
              BF16: () => new Float32Array(new Uint32Array([view.getUint16(2 * i, true) << 16]).buffer)[0]!,
              F16: () => {
                const h = view.getUint16(2 * i, true);
                const e = (h >> 10) & 0x1f;
                const m = h & 0x3ff;
                const s = h & 0x8000 ? -1 : 1;
                return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
              },
            }[t.dtype]();
            expect(Object.is(v, want) || v === want, `${t.name} ${t.dtype}[${i}]`).toBe(true);
          });
        }
      }),
      { seed: SEED, numRuns: RUNS.valid },
    );
  });

  test('mutated headers (hostile fields, duplicate keys, deep nesting, absurd shapes, huge names, truncation): a clean Error or a correct read', () => {
    fc.assert(
      fc.property(mutatedText, ([text, data]) => {
        readChecked(build(text, data));
      }),
      { seed: SEED, numRuns: RUNS.mutated },
    );
  });

  test('truncated and extended valid files, and parseSafetensorsHeader with any fileLength', () => {
    fc.assert(
      fc.property(validFile, fc.nat(), fc.oneof(fc.integer(), fc.double(), fc.constantFrom(NaN, Infinity, -1)), (file, cut, fileLength) => {
        const bytes = build(file.text, file.data);
        readChecked(bytes.subarray(0, cut % (bytes.length + 1)));
        const longer = new Uint8Array(bytes.length + 1 + (cut % 7));
        longer.set(bytes);
        readChecked(longer);
        generated++;
        try {
          parseSafetensorsHeader(bytes, { source: SOURCE, fileLength });
        } catch (e) {
          expect((e as Error).constructor).toBe(Error);
          expect((e as Error).message.startsWith(`${SOURCE}: `)).toBe(true);
        }
      }),
      { seed: SEED, numRuns: RUNS.truncated },
    );
  });

  test('a byte source and the bytes in memory give the same tensors or the same error', () => {
    fc.assert(
      fc.property(fc.oneof(validFile.map((f) => build(f.text, f.data)), mutatedText.map(([t, d]) => build(t, d))), (bytes) => {
        expect(readChecked(sourceOf(bytes))).toEqual(readChecked(bytes));
        // SafetensorsFile over a source reads the header only, until asked for a tensor.
        let read = 0;
        try {
          SafetensorsFile.open({ byteLength: bytes.length, readInto: (p, into) => ((read += into.length), into.set(bytes.subarray(p, p + into.length))) });
          const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
          expect(read).toBe(8 + n);
        } catch {
          // the same clean error as above
        }
      }),
      { seed: SEED, numRuns: RUNS.sources },
    );
  });

  test('the writer round-trips any dict it accepts', () => {
    const dicts = fc.dictionary(
      fc.string({ minLength: 1, maxLength: 8 }).filter((n) => n !== '__metadata__'),
      fc.record({ dtype: fc.constantFrom('float32', 'int32', 'bool'), shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }), seed: fc.nat() }),
      { maxKeys: 4 },
    );
    fc.assert(
      fc.property(dicts, (spec) => {
        const tensors = Object.fromEntries(
          Object.entries(spec).map(([k, { dtype, shape, seed }]) => {
            const n = shape.reduce((a, d) => a * d, 1);
            const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? (seed + i) % 2 : dtype === 'int32' ? seed - i * 977 : Math.fround((seed - i) / 7)));
            return [k, tf.tensor(values, shape, dtype as tf.DataType)];
          }),
        );
        const outcome = readChecked(writeSafetensors(tensors));
        expect(outcome.ok).toBe(true);
        for (const [k, t] of Object.entries(tensors)) {
          const got = (outcome as Extract<Outcome, { ok: true }>).tensors[k]!;
          expect([got.dtype, got.shape, got.values]).toEqual([t.dtype, t.shape, Array.from(t.dataSync())]);
        }
        tf.dispose(Object.values(tensors));
      }),
      { seed: SEED, numRuns: 500 },
    );
    expect(generated).toBeGreaterThanOrEqual(10_000);
  });
});
