/**
 * How well does the frozen encoder see the world? Linear probes (closed-form ridge on one-hot
 * targets) on the embedded MobileNetV2 (nsfwjs, cut at block_13_expand_relu, 2×2-pooled to
 * 7×7 = 49 tokens × 576), per attribute, on four sets of train-split scenes: one object or
 * 2–3 objects, on dark-to-mid or light backgrounds. 80/20 train/test split per set.
 *
 *   pnpm shapeworld-probe [--scale X] [--out results.json] [--backend wasm|cpu] [--no-native]
 *
 * Features: single-object attributes from the 49 tokens' mean; position from the 49 per-token
 * distances to the mean token; per-object attributes in 2–3-object scenes from the mean of the
 * tokens whose centres lie in the object's grid cell (read at its place); the count from mean +
 * distance map over 1–3-object scenes; occupancy of each grid cell from the distance map.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { writeFileSync } from 'node:fs';
import { selectBackend } from '@vlm/core';
import { loadNsfwjsMobileNetV2Encoder } from '@vlm/frozen-loaders';
import { enableNativeMatMul, nativeMatMulAvailable } from '@vlm/native-matmul';
import { COLOURS, SHAPES, SIZES, cellOf, imagesToTensor, renderScene, splitScenes, type BackgroundTone, type Scene } from '@vlm/shapeworld';
import { linearProbe, type ProbeResult } from './linear-probe';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const scale = Number(option('scale', '1'));
const GRID = 7;
const DIM = 576;

interface Encoded {
  scene: Scene;
  tokens: Float32Array; // 49 × 576
}

function cellTokens(cell: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < GRID; r++) {
    for (let c = 0; c < GRID; c++) {
      const cy = Math.floor((((r + 0.5) * 224) / GRID / 224) * 3);
      const cx = Math.floor((((c + 0.5) * 224) / GRID / 224) * 3);
      if (cy * 3 + cx === cell) out.push(r * GRID + c);
    }
  }
  return out;
}
const CELL_TOKENS = Array.from({ length: 9 }, (_, c) => cellTokens(c));

function meanOf(tokens: Float32Array, which: number[]): Float64Array {
  const out = new Float64Array(DIM);
  for (const t of which) for (let j = 0; j < DIM; j++) out[j]! += tokens[t * DIM + j]! / which.length;
  return out;
}
const ALL = Array.from({ length: GRID * GRID }, (_, i) => i);
const meanFeature = (e: Encoded) => meanOf(e.tokens, ALL);
function devmap(e: Encoded): Float64Array {
  const m = meanFeature(e);
  const out = new Float64Array(GRID * GRID);
  for (let t = 0; t < GRID * GRID; t++) {
    let s = 0;
    for (let j = 0; j < DIM; j++) s += (e.tokens[t * DIM + j]! - m[j]!) ** 2;
    out[t] = Math.sqrt(s);
  }
  return out;
}

async function encodeAll(encoder: Awaited<ReturnType<typeof loadNsfwjsMobileNetV2Encoder>>, scenes: Scene[]): Promise<Encoded[]> {
  const out: Encoded[] = [];
  for (let i = 0; i < scenes.length; i += 16) {
    const batch = scenes.slice(i, i + 16);
    const tokens = tf.tidy(() => encoder.encode(imagesToTensor(batch.map(renderScene))));
    const data = (await tokens.data()) as Float32Array;
    tokens.dispose();
    batch.forEach((scene, j) => out.push({ scene, tokens: data.slice(j * GRID * GRID * DIM, (j + 1) * GRID * GRID * DIM) }));
  }
  return out;
}

type Rows = { x: Float64Array[]; y: number[] };
function probe(rows: Rows, classes: number): ProbeResult {
  const cut = Math.floor(rows.x.length * 0.8);
  return linearProbe({ x: rows.x.slice(0, cut), y: rows.y.slice(0, cut) }, { x: rows.x.slice(cut), y: rows.y.slice(cut) }, classes);
}
const rowsOf = <T>(items: T[], f: (t: T) => [Float64Array, number]): Rows => {
  const x: Float64Array[] = [];
  const y: number[] = [];
  for (const it of items) {
    const [a, b] = f(it);
    x.push(a);
    y.push(b);
  }
  return { x, y };
};

async function main() {
  tf.enableProdMode();
  const backend = await selectBackend([option('backend', 'wasm') as 'wasm', 'cpu']);
  const native = !args.includes('--no-native') && nativeMatMulAvailable() ? enableNativeMatMul() : null;
  console.error(`backend ${backend}${native ? `, native matMul (${native.isa})` : ''}`);
  const encoder = await loadNsfwjsMobileNetV2Encoder();
  const t0 = performance.now();
  const results: Record<string, Record<string, ProbeResult>> = {};
  for (const tone of ['dark-to-mid', 'light'] as BackgroundTone[]) {
    const n = (k: number) => Math.round(k * scale * (tone === 'light' ? 0.6 : 1));
    const single = await encodeAll(encoder, splitScenes('train', n(800), { objects: 1, tone, seed: 11 }));
    const multi = await encodeAll(encoder, splitScenes('train', n(600), { objects: [2, 3], tone, seed: 12 }));
    console.error(`${tone}: encoded ${single.length + multi.length} scenes, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const first = (e: Encoded) => e.scene.objects[0]!;
    const objects = multi.flatMap((e) => e.scene.objects.map((o) => ({ e, o })));
    const mixed = [...single, ...multi].sort((a, b) => a.scene.seed - b.scene.seed); // interleave 1 and 2–3 objects
    results[tone] = {
      '1 object: colour': probe(rowsOf(single, (e) => [meanFeature(e), COLOURS.indexOf(first(e).colour)]), COLOURS.length),
      '1 object: shape': probe(rowsOf(single, (e) => [meanFeature(e), SHAPES.indexOf(first(e).shape)]), SHAPES.length),
      '1 object: size': probe(rowsOf(single, (e) => [meanFeature(e), SIZES.indexOf(first(e).size)]), 2),
      '1 object: position (3×3)': probe(rowsOf(single, (e) => [devmap(e), cellOf(first(e))]), 9),
      '2–3 objects: colour at its cell': probe(rowsOf(objects, ({ e, o }) => [meanOf(e.tokens, CELL_TOKENS[cellOf(o)]!), COLOURS.indexOf(o.colour)]), COLOURS.length),
      '2–3 objects: shape at its cell': probe(rowsOf(objects, ({ e, o }) => [meanOf(e.tokens, CELL_TOKENS[cellOf(o)]!), SHAPES.indexOf(o.shape)]), SHAPES.length),
      '2–3 objects: size at its cell': probe(rowsOf(objects, ({ e, o }) => [meanOf(e.tokens, CELL_TOKENS[cellOf(o)]!), SIZES.indexOf(o.size)]), 2),
      '1–3 objects: count': probe(rowsOf(mixed, (e) => [Float64Array.from([...meanFeature(e), ...devmap(e)]), e.scene.objects.length - 1]), 3),
    };
    // Occupancy: is grid cell k occupied? (mean over the 9 cells)
    const occ = Array.from({ length: 9 }, (_, k) => probe(rowsOf(multi, (e) => [devmap(e), e.scene.objects.some((o) => cellOf(o) === k) ? 1 : 0]), 2));
    results[tone]!['2–3 objects: which cells are occupied'] = {
      accuracy: occ.reduce((s, r) => s + r.accuracy, 0) / 9,
      chance: occ.reduce((s, r) => s + r.chance, 0) / 9,
      testRows: occ[0]!.testRows,
      lambda: NaN,
    };
  }
  const seconds = (performance.now() - t0) / 1000;
  const names = Object.keys(results['dark-to-mid']!);
  const pct = (v: number) => `${(100 * v).toFixed(0)}%`;
  console.log('| probe | dark-to-mid backgrounds | light backgrounds | chance (dark / light) |');
  console.log('|---|---:|---:|---:|');
  for (const name of names) {
    const d = results['dark-to-mid']![name]!;
    const l = results.light![name]!;
    console.log(`| ${name} | ${pct(d.accuracy)} (n=${d.testRows}) | ${pct(l.accuracy)} (n=${l.testRows}) | ${pct(d.chance)} / ${pct(l.chance)} |`);
  }
  console.error(`${seconds.toFixed(0)} s`);
  const out = option('out', '');
  if (out) writeFileSync(out, `${JSON.stringify({ scale, backend, seconds, results }, null, 2)}\n`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
