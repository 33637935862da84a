/**
 * pnpm bench:load [--big] [--only NAME[,NAME...]] [--dir DIR] [--no-torch] [--no-generate] [--runs N]
 *
 * Load time and peak memory of real-sized checkpoints, ours against PyTorch's eager load of
 * the same files, in one run (issue 14): GPT-2 124M (F32), OPT-125m in 5 shards (F32), a 125M
 * LLaMA with GQA (BF16), CLIP ViT-B/16's vision tower (F16), a BLIP-2-sized checkpoint (real
 * Q-Former config, OPT-125m, a 2-layer EVA-width vision tower; F32) and, with --big,
 * TinyLlama-1.1B (BF16, one 2.2 GB file; ours on the cpu backend with the native matMul, since it
 * does not fit the 4 GiB wasm heap — which the wasm row shows as the error it gets).
 *
 * Checkpoints are random (N(0, 0.02)), written once by tools/bench/python/load_checkpoints.py
 * with PyTorch into DIR (default: $TMPDIR/vlm-bench-load), with the key names and shapes of the
 * Hugging Face models. Each load runs in a fresh process (so peak RSS is the load's own): ours
 * with `readHfCheckpointDir` + the loaders, PyTorch by reading every tensor into float32 torch
 * tensors (see the Python script). For the LMs, the first run also times a 64-token forward
 * and greedy generation (batch 1, a 16-token prompt, 32 new tokens, KV cache) with the native
 * matMul, against PyTorch generating from the same files (`load_checkpoints.py generate`: the
 * decoders in plain torch; the faster of one thread and every core), and says whether both chose the same ids. Prints a
 * markdown table on stdout; progress on stderr.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { selectBackend, skipInit } from '@vlm/core';
import {
  Blip2VisionModel,
  ClipVisionModel,
  createDecoderLM,
  generate,
  loadBlip2VisionModel,
  loadClipVisionModel,
  loadDecoderLM,
  parseBlip2VisionConfig,
  parseClipVisionConfig,
  type CausalLM,
  type ShardedSafetensors,
} from '@vlm/frozen-loaders';
import { readHfCheckpointDir } from '@vlm/frozen-loaders/node';
import { QFormer, qformerArgsFromHfBlip2Config, qformerFromHfBlip2 } from '@vlm/qformer';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

type Dtype = 'F32' | 'F16' | 'BF16';
interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: number[];
}
interface Model {
  name: string;
  label: string;
  big?: boolean;
  /** A decoder LM: the first run also times a forward and generation. */
  lm?: boolean;
  /** Our backend: stock wasm, or cpu with the native matMul. */
  backend: 'wasm' | 'cpu+native';
  config: Record<string, unknown>;
  files(): Record<string, TensorSpec[]>;
  index?: () => Record<string, unknown>;
  /** Loads with our loaders; returns the parameter count and what to dispose. */
  load(dir: string): Promise<{ parameters: number; dispose(): void; lm?: CausalLM }>;
}

const GPT2 = { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };
const OPT = {
  model_type: 'opt', vocab_size: 50272, hidden_size: 768, num_hidden_layers: 12, ffn_dim: 3072, num_attention_heads: 12,
  max_position_embeddings: 2048, word_embed_proj_dim: 768, do_layer_norm_before: true, pad_token_id: 1,
};
const LLAMA = {
  model_type: 'llama', vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12,
  num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 2048, tie_word_embeddings: false,
};
const TINYLLAMA = {
  model_type: 'llama', vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
  num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048, tie_word_embeddings: false,
};
const CLIP = {
  model_type: 'clip_vision_model', hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12,
  image_size: 224, patch_size: 16, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, projection_dim: 512,
};
const BLIP2 = {
  model_type: 'blip-2',
  num_query_tokens: 32,
  vision_config: { model_type: 'blip_2_vision_model', hidden_size: 1408, intermediate_size: 6144, num_hidden_layers: 2, num_attention_heads: 16, image_size: 224, patch_size: 14 },
  qformer_config: {
    model_type: 'blip_2_qformer', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072,
    cross_attention_frequency: 2, encoder_hidden_size: 1408, vocab_size: 30522, max_position_embeddings: 512, layer_norm_eps: 1e-12,
  },
  text_config: OPT,
};

const specOf = (shapes: Record<string, number[]>, dtype: Dtype, prefix = ''): TensorSpec[] =>
  Object.entries(shapes).map(([name, shape]) => ({ name: prefix + name, dtype, shape }));
const lmShapes = (config: Record<string, unknown>) => {
  const lm = skipInit(() => createDecoderLM(config));
  return lm.stateDictShapes();
};
const count = (shapes: Record<string, number[]>) => Object.values(shapes).reduce((n, s) => n + s.reduce((a, d) => a * d, 1), 0);

/** One LM loaded from DIR by readHfCheckpointDir + loadDecoderLM. */
async function loadLM(dir: string, keyPrefix?: string) {
  const { config, weights } = await readHfCheckpointDir(dir);
  const lm = await loadDecoderLM({ config, weights: weights as ShardedSafetensors, keyPrefix });
  return { parameters: count(lm.stateDictShapes()), dispose: () => lm.dispose(), lm };
}

const MODELS: Model[] = [
  {
    name: 'gpt2', label: 'GPT-2 124M F32', backend: 'wasm', lm: true, config: GPT2,
    files: () => ({ 'model.safetensors': specOf(lmShapes(GPT2), 'F32') }),
    load: (dir) => loadLM(dir),
  },
  {
    name: 'opt', label: 'OPT-125m, 5 shards', backend: 'wasm', lm: true, config: OPT,
    files: () => {
      const all = specOf(lmShapes(OPT), 'F32');
      const per = Math.ceil(all.length / 5);
      return Object.fromEntries([0, 1, 2, 3, 4].map((i) => [`model-0000${i + 1}-of-00005.safetensors`, all.slice(i * per, (i + 1) * per)]));
    },
    index: () => {
      const all = specOf(lmShapes(OPT), 'F32');
      const per = Math.ceil(all.length / 5);
      return { metadata: { total_size: 4 * count(lmShapes(OPT)) }, weight_map: Object.fromEntries(all.map((t, i) => [t.name, `model-0000${Math.floor(i / per) + 1}-of-00005.safetensors`])) };
    },
    load: (dir) => loadLM(dir),
  },
  {
    name: 'llama', label: 'LLaMA 125M BF16 (GQA)', backend: 'wasm', lm: true, config: LLAMA,
    files: () => ({ 'model.safetensors': specOf(lmShapes(LLAMA), 'BF16') }),
    load: (dir) => loadLM(dir),
  },
  {
    name: 'clip', label: 'CLIP ViT-B/16 F16', backend: 'wasm', config: CLIP,
    files: () => ({ 'model.safetensors': specOf(skipInit(() => new ClipVisionModel(parseClipVisionConfig(CLIP))).stateDictShapes(), 'F16') }),
    load: async (dir) => {
      const clip = loadClipVisionModel(await readHfCheckpointDir(dir));
      return { parameters: count(clip.stateDictShapes()), dispose: () => clip.dispose() };
    },
  },
  {
    name: 'blip2', label: 'BLIP-2 (283M: Q-Former + OPT-125m + ViT)', backend: 'wasm', config: BLIP2,
    files: () => {
      const vision = skipInit(() => new Blip2VisionModel(parseBlip2VisionConfig(BLIP2))).stateDictShapes();
      const qformer = skipInit(() => new QFormer(qformerArgsFromHfBlip2Config(BLIP2))).stateDictShapes();
      const hfQ = Object.fromEntries(
        Object.entries(qformer).map(([k, s]) => [k === 'query_tokens' || k.startsWith('language_projection.') ? k : `qformer.${k}`, s]),
      );
      return {
        'model.safetensors': [
          ...specOf(vision, 'F32', 'vision_model.'),
          ...specOf(hfQ, 'F32'),
          ...specOf(lmShapes(OPT), 'F32', 'language_model.'),
        ],
      };
    },
    load: async (dir) => {
      const checkpoint = await readHfCheckpointDir(dir);
      const vision = loadBlip2VisionModel(checkpoint);
      const qformer = qformerFromHfBlip2(BLIP2, checkpoint.weights as Parameters<typeof qformerFromHfBlip2>[1] & object);
      const lm = await loadDecoderLM({ config: OPT, weights: checkpoint.weights as ShardedSafetensors, keyPrefix: 'language_model.' });
      const parameters = count(vision.stateDictShapes()) + count(qformer.stateDictShapes()) + count(lm.stateDictShapes());
      return { parameters, dispose: () => [vision, qformer, lm].forEach((m) => m.dispose()) };
    },
  },
  {
    name: 'tinyllama', label: 'TinyLlama-1.1B BF16 (one 2.2 GB file)', big: true, backend: 'cpu+native', lm: true, config: TINYLLAMA,
    files: () => ({ 'model.safetensors': specOf(lmShapes(TINYLLAMA), 'BF16') }),
    load: (dir) => loadLM(dir),
  },
];

/** The generation benchmark: batch 1, greedy, this prompt, this many new tokens (ours and PyTorch's). */
const PROMPT = Array.from({ length: 16 }, (_, i) => 1 + 37 * i);
const NEW_TOKENS = 32;

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.VLM_PYTHON ?? '/usr/bin/python3';
const SCRIPT = resolve(here, '../python/load_checkpoints.py');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Child: load one model in this fresh process and print what it measured. */
async function child(name: string, dir: string, backend: string): Promise<void> {
  const model = MODELS.find((m) => m.name === name)!;
  if (backend === 'cpu+native') {
    await selectBackend(['cpu']);
    const { enableNativeMatMul } = await import('@vlm/native-matmul');
    enableNativeMatMul();
  } else {
    await selectBackend([backend as 'wasm' | 'cpu']);
  }
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  let result: Record<string, unknown>;
  try {
    const loaded = await model.load(dir);
    const seconds = (performance.now() - started) / 1000;
    // The load's own peak, before a forward (XNNPACK keeps packed copies of weights it multiplies).
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    let forward64Ms: number | undefined;
    let generation: { tokensPerSecond: number; ids: number[] } | undefined;
    if (loaded.lm && !process.argv.includes('--no-forward')) {
      // (dataSync outside tidy: tidy walks whatever its function returns, a 3.2M-element array included)
      const ids = tf.tensor2d([Array.from({ length: 64 }, (_, i) => (i * 37) % 1000)], undefined, 'int32');
      const step = () => {
        const logits = tf.tidy(() => loaded.lm!.forward({ inputIds: ids }).logits);
        logits.dataSync();
        logits.dispose();
      };
      step();
      const t = performance.now();
      step();
      forward64Ms = performance.now() - t;
      ids.dispose();
    }
    if (loaded.lm && process.argv.includes('--generate')) {
      // Greedy generation with the native matMul (it does not change loading, so it is enabled only now).
      const { enableNativeMatMul } = await import('@vlm/native-matmul');
      enableNativeMatMul();
      const run = () => generate(loaded.lm!, { inputIds: [PROMPT], maxNewTokens: NEW_TOKENS }).newTokens[0]!;
      run(); // warm-up
      const t = performance.now();
      const ids = run();
      generation = { tokensPerSecond: NEW_TOKENS / ((performance.now() - t) / 1000), ids };
    }
    result = { seconds, parameters: loaded.parameters, forward64Ms, peakRssBytes, ...generation };
    loaded.dispose();
  } catch (e) {
    result = { seconds: (performance.now() - started) / 1000, error: (e as Error).message.split('\n')[0]!.slice(0, 200) };
  }
  process.stdout.write(`${JSON.stringify({ peakRssBytes: process.resourceUsage().maxRSS * 1024, ...result, rssBeforeBytes: rssBefore })}\n`);
}

function ensureCheckpoint(model: Model, root: string): string {
  const dir = join(root, model.name);
  const files = model.files();
  if (existsSync(join(dir, 'config.json')) && Object.keys(files).every((f) => existsSync(join(dir, f)))) return dir;
  mkdirSync(root, { recursive: true });
  const spec = join(root, `${model.name}.spec.json`);
  writeFileSync(spec, JSON.stringify({ dir, config: model.config, files, index: model.index?.() }));
  process.stderr.write(`writing ${model.label} to ${dir} (PyTorch, random weights)…\n`);
  const r = spawnSync(PYTHON, [SCRIPT, 'write', spec], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${SCRIPT} write failed for ${model.name}`);
  return dir;
}

function runJson(cmd: string, args: string[]): Record<string, any> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, any>;
  } catch {
    return { error: (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ').slice(0, 200) };
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gb = (b: number) => (b / 1e9).toFixed(2);

async function main(): Promise<void> {
  const childName = arg('--child');
  if (childName) return child(childName, arg('--dir')!, arg('--backend') ?? 'wasm');
  const big = process.argv.includes('--big');
  const only = arg('--only')?.split(',');
  const root = resolve(arg('--dir') ?? join(tmpdir(), 'vlm-bench-load'));
  const runs = Number(arg('--runs') ?? 3);
  const torch = !process.argv.includes('--no-torch');
  const models = MODELS.filter((m) => (only ? only.includes(m.name) : !m.big || big));
  const rows: string[] = [];
  for (const model of models) {
    const dir = ensureCheckpoint(model, root);
    const weightFiles = readdirSync(dir).filter((f) => f.endsWith('.safetensors')).map((f) => join(dir, f));
    const backends = model.backend === 'wasm' ? ['wasm'] : ['cpu+native', 'wasm'];
    for (const backend of backends) {
      process.stderr.write(`${model.label}: ours on ${backend}…\n`);
      // The first run also times a 64-token forward and (LMs, unless --no-generate) greedy generation.
      const generation = model.lm === true && !process.argv.includes('--no-generate') && backend === backends[0];
      const ours = Array.from({ length: backend === 'wasm' && model.big ? 1 : runs }, (_, i) =>
        runJson(process.execPath, [
          fileURLToPath(import.meta.url), '--child', model.name, '--dir', dir, '--backend', backend,
          ...(i === 0 ? (generation ? ['--generate'] : []) : ['--no-forward']),
        ]),
      );
      const ok = ours.filter((o) => !o.error);
      const py = torch && backend === backends[0] ? Array.from({ length: runs }, () => runJson(PYTHON, [SCRIPT, 'load', ...weightFiles])) : [];
      const pyOk = py.filter((p) => !p.error);
      const pyGen = torch && generation ? runJson(PYTHON, [SCRIPT, 'generate', join(dir, 'config.json'), String(NEW_TOKENS), PROMPT.join(','), ...weightFiles]) : undefined;
      const gen = ok.find((o) => o.tokensPerSecond !== undefined);
      const oursS = ok.length ? median(ok.map((o) => o.seconds)) : NaN;
      const pyS = pyOk.length ? median(pyOk.map((p) => p.seconds)) : NaN;
      const params = ok[0]?.parameters ?? pyOk[0]?.parameters ?? 0;
      const cells = [
        model.label,
        backend,
        ok.length ? `${oursS.toFixed(2)} s` : `fails: ${ours[0]!.error}`,
        pyOk.length ? `${pyS.toFixed(2)} s` : torch && backend === backends[0] ? `– (${py[0]?.error ?? 'n/a'})` : '–',
        ok.length && pyOk.length ? `${(oursS / pyS).toFixed(1)}×` : '–',
        ok.length ? `${gb(median(ok.map((o) => o.peakRssBytes)))} GB` : '–',
        pyOk.length ? `${gb(median(pyOk.map((p) => p.peakRssBytes)))} GB` : '–',
        params ? `${gb(4 * params)} GB` : '–',
        ok.length && ok[0]!.forward64Ms !== undefined ? `${ok[0]!.forward64Ms.toFixed(0)} ms` : '–',
        gen ? gen.tokensPerSecond.toFixed(1) : '–',
        pyGen?.tokensPerSecond !== undefined ? `${pyGen.tokensPerSecond.toFixed(1)} (${pyGen.threads} thread${pyGen.threads === 1 ? '' : 's'})` : pyGen ? `– (${pyGen.error})` : '–',
        gen && pyGen?.tokensPerSecond !== undefined ? `${(gen.tokensPerSecond / pyGen.tokensPerSecond).toFixed(2)}×` : '–',
        gen && pyGen?.ids ? (JSON.stringify(gen.ids) === JSON.stringify(pyGen.ids) ? 'yes' : 'no') : '–',
      ];
      rows.push(`| ${cells.join(' | ')} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  }
  const head =
    '| model | ours on | ours load | PyTorch load | ratio | ours peak RSS | PyTorch peak RSS | weights as float32 | forward, 64 tokens | tokens/s ours (native matMul) | tokens/s PyTorch | ratio | same greedy ids |';
  process.stdout.write(`${[head, '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|', ...rows].join('\n')}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
