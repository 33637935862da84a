import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { encodePng, renderScene, splitScenes } from '@vlm/shapeworld';

// Runs the built demo (`npm run demo -- --quick`, as the README's first command does after the build) and
// checks the contract of its outputs: results.json fields, report.html, bridges, metrics log, checkpoints.
const main = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/main.js');
// The test command runs the unit tests three times (cpu, wasm, wasm + native matMul): the demo runs once, in
// the native pass (its default kernels), or whenever no backend is named (a targeted run of this file).
const runHere = process.env.VLM_BACKEND === undefined || process.env.VLM_NATIVE === '1';
const isAcc = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;

describe('npm run demo -- --quick', () => {
  test.skipIf(!existsSync(main) || !runHere)('writes results.json with every listed field, a self-contained report.html, the bridges, metrics and checkpoints', () => {
    const out = mkdtempSync(join(tmpdir(), 'vlm-demo-'));
    try {
      const run = spawnSync(process.execPath, [main, '--quick', '--out', out, '--seed', '0'], { encoding: 'utf8', timeout: 300_000 });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
      for (const h of [r.flamingo.heldout, r.blip2.heldout, r.baselines.lm_only, r.baselines.mlp_projector]) {
        for (const k of ['caption_color', 'caption_shape', 'vqa']) expect(isAcc(h[k]), k).toBe(true);
      }
      expect(r.flamingo.gates.length).toBeGreaterThan(0);
      for (const g of r.flamingo.gates) expect(Object.keys(g).sort()).toEqual(['attn', 'ff', 'layer', 'step']);
      // gate contributions: one entry per layer with a block, finite and non-negative
      expect(r.flamingo.gate_contribution.map((c: { layer: number }) => c.layer)).toEqual([...new Set(r.flamingo.gates.map((g: { layer: number }) => g.layer))]);
      for (const c of r.flamingo.gate_contribution) for (const v of [c.attn, c.ff]) expect(Number.isFinite(v) && v >= 0).toBe(true);
      expect(isAcc(r.blip2.retrieval.i2t_r1) && isAcc(r.blip2.retrieval.t2i_r1)).toBe(true);
      const q = r.qformer_probe.query_cosine;
      expect(q.length).toBe(32);
      for (const row of q) expect(row.length).toBe(32);
      expect(r.qformer_probe.per_query.length).toBe(32);
      for (const p of r.qformer_probe.per_query) expect(Object.keys(p).sort()).toEqual(['color', 'position', 'query', 'shape', 'size']);
      for (const m of ['flamingo', 'blip2', 'lm_only']) {
        expect(Object.keys(r.few_shot[m]).sort()).toEqual(['0', '2', '4']);
        expect(Object.keys(r.few_shot_mixtures[m]).sort()).toEqual(['0', '2', '4']);
        expect(Object.keys(r.few_shot_vqa[m]).sort()).toEqual(['0', '2', '3']);
        // every cell fits the LM's 256 positions, BLIP-2's 5 images × 32 soft tokens included
        for (const v of [...Object.values(r.few_shot[m]), ...Object.values(r.few_shot_mixtures[m]), ...Object.values(r.few_shot_vqa[m])]) expect(isAcc(v)).toBe(true);
      }
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.configuration.quick).toBe(true);
      const html = readFileSync(join(out, 'report.html'), 'utf8');
      expect(html).toContain('<svg');
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/); // self-contained
      for (const f of ['vision-standardization.safetensors', 'flamingo.safetensors', 'flamingo.json', 'blip2.safetensors', 'blip2.json', 'mlp-projector.safetensors', 'metrics/flamingo.jsonl', 'checkpoints/flamingo']) {
        expect(existsSync(join(out, f)), f).toBe(true);
      }

      // caption / ask with the run's bridges (and its standardization): one JSON line per image
      const png = join(out, 'scene.png');
      writeFileSync(png, encodePng(renderScene(splitScenes('validation', 1, { seed: 5, objects: 1 })[0]!)));
      const caption = spawnSync(process.execPath, [main, 'caption', '--bridge', 'flamingo', '--from', out, png], { encoding: 'utf8', timeout: 120_000 });
      expect(caption.status, caption.stderr).toBe(0);
      const line = JSON.parse(caption.stdout.trim());
      expect(line.image).toBe(png);
      expect(line.caption).toMatch(/^a \S+/);
      const ask = spawnSync(process.execPath, [main, 'ask', '--bridge', 'blip2', '--from', out, '--question', 'what colour is the shape?', png], { encoding: 'utf8', timeout: 120_000 });
      expect(ask.status, ask.stderr).toBe(0);
      expect(Object.keys(JSON.parse(ask.stdout.trim())).sort()).toEqual(['answer', 'image', 'question']);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 560_000);
});
