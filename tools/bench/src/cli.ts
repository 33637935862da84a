/**
 * pnpm bench [--backend wasm|cpu|webgpu] [--quick] [--only NAME[,NAME...]] [--modes infer,train]
 *            [--iters N] [--warmup N] [--micro-batch N] [--workers N [--verify]] [--native [--threads N] [--native-without K,…]]
 *            [--profile] [--vs-torch] [--torch-script PATH]
 *
 * Times the bridges on the configurations of the PyTorch reference `bench_torch.py`: one JSON
 * line per (configuration, mode) on stdout, with the PyTorch script's fields plus `backend`,
 * `workers` and `numTensorsBefore`/`numTensorsAfter`; progress and tables on stderr, ending
 * with `bench (...): N passed, M failed` (a run fails when it throws or leaks a tensor).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { microBatchGrads, selectBackend, type BackendName } from '@vlm/core';
import { OPTIONAL_NATIVE_KERNELS, enableNativeMatMul, nativeKernelsWithout, parseNativeWithout, type OptionalNativeKernel } from '@vlm/native-matmul';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_NAMES, benchConfigs, type BenchCase, type ConfigName } from './configs';
import { outputWeights, prepareStep, type Mode } from './run';
import { prepareWorkerStep, type WorkerStep } from './workers';
import { round3, timeIt } from './measure';

const USAGE = `usage: pnpm bench [--backend wasm|cpu|webgpu] [--quick] [--only NAME[,NAME...]] [--modes infer,train]
                  [--iters N] [--warmup N] [--micro-batch N] [--workers N [--verify]]
                  [--native [--threads N] [--native-without ${OPTIONAL_NATIVE_KERNELS.join(',')}]] [--profile] [--vs-torch] [--torch-script PATH]
configurations: ${CONFIG_NAMES.join(', ')}
--native-without: a non-empty list of the native kernels to leave out, each at most once`;

interface Options {
  backend: BackendName;
  quick: boolean;
  only: Set<ConfigName> | null;
  modes: Mode[];
  iters: number;
  warmup: number;
  /** Micro-batch of train (and infer) steps; 0 = the default of the configuration. */
  microBatch: number;
  vsTorch: boolean;
  torchScript: string;
  /** Worker threads splitting the batch (0 = run on the main thread). */
  workers: number;
  /** With workers: check their output / summed gradients against the main thread (always with --quick). */
  verify: boolean;
  /** Run matMuls on @vlm/native-matmul's kernels. */
  native: boolean;
  /** Threads of the native matMul (0 = every CPU). */
  threads: number;
  /** Native kernels besides the matMul to leave out (to measure what each brings). */
  nativeWithout: OptionalNativeKernel[];
  /** After timing, profile one more step and print the kernels that took the most time. */
  profile: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    backend: 'wasm',
    quick: false,
    only: null,
    modes: ['infer', 'train'],
    iters: 5,
    warmup: 2,
    microBatch: 0,
    vsTorch: false,
    workers: 0,
    verify: false,
    native: false,
    threads: 0,
    nativeWithout: [],
    profile: false,
    torchScript: resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/reference/bench_torch.py'),
  };
  const int = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer >= ${min}, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--backend': {
        const b = value();
        if (!['wasm', 'cpu', 'webgpu', 'webgl'].includes(b ?? '')) throw new Error(`--backend must be wasm, cpu or webgpu, got '${b}'`);
        o.backend = b as BackendName;
        break;
      }
      case '--quick':
        o.quick = true;
        break;
      case '--only': {
        const names = (value() ?? '').split(',').filter(Boolean);
        const bad = names.filter((n) => !(CONFIG_NAMES as readonly string[]).includes(n));
        if (bad.length || !names.length) throw new Error(`--only: unknown configuration(s) ${bad.join(', ')}; expected some of ${CONFIG_NAMES.join(', ')}`);
        o.only = new Set(names as ConfigName[]);
        break;
      }
      case '--modes': {
        const modes = (value() ?? '').split(',').filter(Boolean);
        if (!modes.length || modes.some((m) => m !== 'infer' && m !== 'train')) throw new Error(`--modes must be a list of infer,train, got '${modes}'`);
        o.modes = modes as Mode[];
        break;
      }
      case '--iters':
        o.iters = int('--iters', value(), 1);
        break;
      case '--warmup':
        o.warmup = int('--warmup', value(), 0);
        break;
      case '--micro-batch':
        o.microBatch = int('--micro-batch', value(), 1);
        break;
      case '--workers':
        o.workers = int('--workers', value(), 0);
        break;
      case '--verify':
        o.verify = true;
        break;
      case '--native':
        o.native = true;
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--threads':
        o.threads = int('--threads', value(), 1);
        break;
      case '--native-without':
        o.nativeWithout = parseNativeWithout(value() ?? '');
        break;
      case '--vs-torch':
        o.vsTorch = true;
        break;
      case '--torch-script':
        o.torchScript = resolve(value() ?? '');
        break;
      case '--help':
      case '-h':
        process.stderr.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${argv[i]}\n${USAGE}`);
    }
  }
  if (o.native && o.workers) throw new Error('--native and --workers are alternatives (the native matMul uses every core itself)');
  if (o.threads && !o.native) throw new Error('--threads sets the threads of --native');
  if (o.nativeWithout.length && !o.native) throw new Error('--native-without leaves kernels out of --native');
  if (o.profile && o.workers) throw new Error('--profile profiles the main thread; it does not look into --workers');
  return o;
}

/** One output line: bench_torch.py's fields, plus backend, workers and the tensor counts. */
interface Record_ {
  name: ConfigName;
  mode: Mode;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  flops_estimate: number;
  gflops: number;
  torch_version: null;
  tfjs_version: string;
  threads: number;
  iters: number;
  warmup: number;
  quick: boolean;
  other_procs_cores: number | null;
  shapes: Record<string, number[] | number>;
  backend: string;
  workers: number;
  /** The native matMul's micro-kernel (`avx512`, `avx2`, `generic`), or null on the stock kernels. */
  native_matmul: string | null;
  /** The native kernels in use (`matMul`, `gelu`, `layerNorm`), or null on the stock kernels. */
  native_kernels: string[] | null;
  micro_batch: number;
  numTensorsBefore: number;
  numTensorsAfter: number;
  /** wasm only: size of the wasm heap after the runs, i.e. its peak (it never shrinks), MB. */
  wasm_heap_mb?: number;
}

/**
 * Default train micro-batch on wasm at full size. On the stock kernels: 4 where a whole batch
 * of 8 needs more than 3 GB of the 4 GB wasm32 heap (measured peaks at B=8: perceiver_seed
 * > 4 GB, crashes; perceiver_flamingo 3.6 GB, qformer 3.5 GB, qformer_proj 3.6 GB;
 * xattn_flamingo 2.3 GB, xattn_seed 1.0 GB), else the whole batch. With the native matMul
 * the whole batch: XNNPACK's packed copy of every weight is gone (perceiver_seed's B=8 step
 * peaks at 3.2 GB).
 */
function defaultMicroBatch(o: Options, name: ConfigName, mode: Mode): number {
  if (o.microBatch) return o.microBatch;
  if (o.quick || o.native || o.backend !== 'wasm' || mode !== 'train') return Number.MAX_SAFE_INTEGER;
  return name.startsWith('xattn') ? Number.MAX_SAFE_INTEGER : 4;
}

/** The wasm heap's size in MB (its high-water mark), on the wasm backend. */
function heapMb(): { wasm_heap_mb?: number } {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? { wasm_heap_mb: Math.round(heap.length / 2 ** 20) } : {};
}

/**
 * Checks the workers' last result against the same computation on the main thread: the
 * output (infer) or the gradients summed over workers (train), within 1e-4 of the largest value.
 */
function verifyWorkers(c: BenchCase, mode: Mode, mb: number, step: WorkerStep) {
  const params = c.model.parameters();
  const last = step.last();
  // Tensors out of tf.tidy, values read after: tidy walks every element of a returned typed array.
  const flat = (g: tf.NamedTensorMap) => tf.tidy(() => tf.concat(params.map((p) => tf.reshape(g[p.name]!, [-1]))));
  const refT = tf.tidy(() => {
    if (mode === 'infer') return c.forward(c.inputs);
    return flat(microBatchGrads(([w, ...xs]) => tf.sum(tf.mul(c.forward(xs), w!)), [outputWeights(c), ...c.inputs], mb, params).grads);
  });
  const gotT = mode === 'infer' ? last.output! : flat(last.grads!);
  const [ref, got] = [refT.dataSync(), gotT.dataSync()];
  tf.dispose(mode === 'infer' ? [refT] : [refT, gotT]);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]!));
    diff = Math.max(diff, Math.abs(ref[i]! - got[i]!));
  }
  if (!(diff <= 1e-4 * scale + 1e-6)) throw new Error(`workers disagree with the main thread: max |diff| ${diff} (max |value| ${scale})`);
  log(`  workers verified: max |diff| ${diff.toExponential(2)} of max |value| ${scale.toExponential(2)}`);
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/**
 * The OpenBLAS kernels for this CPU, named explicitly. Debian 12's OpenBLAS 0.3.21 does not
 * know newer CPU models (this project's Xeon, family 6 model 207, included) and falls back to
 * its Prescott (SSE3) kernels: PyTorch's 2-thread GEMM ran at 57 GFLOP/s that way and at
 * 280 GFLOP/s with `SKYLAKEX`. Undefined (OpenBLAS decides) where /proc/cpuinfo is unreadable;
 * set OPENBLAS_CORETYPE yourself to override.
 */
function openblasCoreType(): string | undefined {
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  } catch {
    return undefined;
  }
  if (/\bavx512f\b/.test(flags)) return 'SKYLAKEX';
  if (/\bavx2\b/.test(flags)) return 'HASWELL';
  return undefined;
}

/** Runs bench_torch.py with the same selection; its JSON lines, or null (with the reason logged). */
function runTorch(o: Options): Array<{ name: string; mode: string; median_ms: number; other_procs_cores: number | null }> | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py) || spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
    log(`--vs-torch: ${py} with torch not found; PyTorch column left empty`);
    return null;
  }
  if (!existsSync(o.torchScript)) {
    log(`--vs-torch: ${o.torchScript} not found (--torch-script PATH); PyTorch column left empty`);
    return null;
  }
  const args = [o.torchScript, '--iters', String(o.iters), '--warmup', String(o.warmup), '--modes', o.modes.join(',')];
  if (o.quick) args.push('--quick');
  if (o.only) args.push('--only', [...o.only].join(','));
  const env = { ...process.env, OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? openblasCoreType() };
  log(`running PyTorch: OPENBLAS_CORETYPE=${env.OPENBLAS_CORETYPE ?? '(auto)'} ${py} ${args.join(' ')}`);
  const r = spawnSync(py, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26, env });
  if (r.status !== 0) {
    log(`--vs-torch: bench_torch.py exited with ${r.status}`);
    return null;
  }
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const torch = o.vsTorch ? runTorch(o) : null;
  await selectBackend([o.backend]);
  const native = o.native
    ? enableNativeMatMul({ ...(o.threads ? { threads: o.threads } : {}), ...nativeKernelsWithout(o.nativeWithout) })
    : null;
  const tfjsVersion = tf.version_core;
  log(`bench: backend ${tf.getBackend()}${o.workers ? ` × ${o.workers} worker threads` : ''}${native ? `, native matMul (${native.isa}, ${native.threads} threads)` : ''}, ${o.quick ? 'quick' : 'full-size'} shapes, ${o.warmup} warm-up + ${o.iters} timed runs`);
  const records: Record_[] = [];
  const failures: string[] = [];
  let passed = 0;
  const t0 = performance.now();
  for (const cfg of benchConfigs(o.quick)) {
    if (o.only && !o.only.has(cfg.name)) continue;
    const baseline = tf.memory().numTensors;
    let c;
    try {
      c = cfg.build();
    } catch (e) {
      failures.push(`${cfg.name}: build failed: ${(e as Error).message}`);
      continue;
    }
    for (const mode of o.modes) {
      const before = tf.memory().numTensors;
      const mb = defaultMicroBatch(o, cfg.name, mode);
      try {
        let workerLeak = '';
        let workerHeap = 0;
        let t;
        if (o.workers > 0) {
          const B = c.inputs[0]!.shape[0]!;
          const step = await prepareWorkerStep(c, mode, o.workers, { backend: o.backend, quick: o.quick, microBatch: Math.min(mb, B) });
          const w0 = await step.numTensors();
          t = await timeIt(step.run, o.warmup, o.iters);
          const w1 = await step.numTensors();
          workerHeap = await step.heapMb();
          if (o.quick || o.verify) verifyWorkers(c, mode, Math.min(mb, B), step);
          await step.dispose();
          if (w1.some((n, i) => n !== w0[i])) workerLeak = `worker tensors ${w0.join('/')} → ${w1.join('/')}`;
        } else {
          const step = prepareStep(c, mode, mb);
          t = await timeIt(step.run, o.warmup, o.iters);
          if (o.profile) await printProfile(step.run);
          await step.dispose();
        }
        const after = tf.memory().numTensors;
        const flops = mode === 'train' ? 3 * c.flops : c.flops;
        const B = c.inputs[0]!.shape[0]!;
        const rec: Record_ = {
          name: cfg.name,
          mode,
          median_ms: round3(t.median),
          min_ms: round3(t.min),
          max_ms: round3(t.max),
          flops_estimate: flops,
          gflops: Math.round((flops / (t.median * 1e-3) / 1e9) * 100) / 100,
          torch_version: null,
          tfjs_version: tfjsVersion,
          threads: native ? native.threads : Math.max(1, o.workers),
          iters: o.iters,
          warmup: o.warmup,
          quick: o.quick,
          other_procs_cores: t.otherProcsCores,
          shapes: c.shapes,
          backend: tf.getBackend(),
          workers: o.workers,
          native_matmul: native?.isa ?? null,
          native_kernels: native ? ['matMul', ...OPTIONAL_NATIVE_KERNELS.filter((k) => native[k])] : null,
          micro_batch: Math.min(mb, B),
          numTensorsBefore: before,
          numTensorsAfter: after,
          ...(workerHeap ? { wasm_heap_mb: workerHeap } : heapMb()),
        };
        records.push(rec);
        process.stdout.write(`${JSON.stringify(rec)}\n`);
        log(`${cfg.name.padEnd(19)} ${mode.padEnd(6)} ${rec.median_ms.toFixed(1).padStart(10)} ms  (${rec.min_ms.toFixed(1)}–${rec.max_ms.toFixed(1)})  ${rec.gflops} GFLOP/s  other cores ${rec.other_procs_cores}${rec.wasm_heap_mb ? `  heap ${rec.wasm_heap_mb} MB` : ''}`);
        if (after !== before || workerLeak) failures.push(`${cfg.name} ${mode}: ${after - before} tensor(s) leaked ${workerLeak}`);
        else passed++;
      } catch (e) {
        failures.push(`${cfg.name} ${mode}: ${(e as Error).stack ?? e}`);
      }
    }
    c.model.dispose();
    tf.dispose(c.inputs);
    const left = tf.memory().numTensors - baseline;
    if (left !== 0) failures.push(`${cfg.name}: ${left} tensor(s) left after disposing the model and inputs`);
  }
  if (torch) printVsTorch(records, torch);
  for (const f of failures) log(`FAIL ${f}`);
  log(`total ${((performance.now() - t0) / 1e3).toFixed(1)}s`);
  log(`bench (${o.backend}${o.quick ? ', quick' : ''}${o.workers ? `, ${o.workers} workers` : ''}${native ? `, native matMul × ${native.threads}` : ''}): ${passed} passed, ${failures.length} failed`);
  process.exit(failures.length ? 1 : 0);
}

/** Runs `run` once under `tf.profile` and prints the kernels by total time (stderr). */
async function printProfile(run: () => Promise<void>) {
  const t0 = performance.now();
  const info = await tf.profile(run);
  const wall = performance.now() - t0;
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.calls++;
    byKernel.set(k.name, e);
  }
  const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((s, [, e]) => s + e.ms, 0);
  log(`  profile: wall ${wall.toFixed(0)} ms, kernels ${total.toFixed(0)} ms in ${info.kernels.length} calls`);
  for (const [name, e] of rows.slice(0, 14)) log(`    ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  ${e.calls} calls`);
}

function printVsTorch(records: Record_[], torch: Array<{ name: string; mode: string; median_ms: number; other_procs_cores: number | null }>) {
  const rows = [['config', 'mode', 'PyTorch ms', 'ours ms', 'ours/PyTorch', 'other cores (torch/ours)']];
  for (const r of records) {
    const t = torch.find((x) => x.name === r.name && x.mode === r.mode);
    rows.push([
      r.name,
      r.mode,
      t ? t.median_ms.toFixed(1) : '-',
      r.median_ms.toFixed(1),
      t ? (r.median_ms / t.median_ms).toFixed(2) : '-',
      `${t?.other_procs_cores ?? '-'}/${r.other_procs_cores ?? '-'}`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  log('');
  for (const row of rows) log(row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}

main().catch((e) => {
  log(`bench: ${(e as Error).stack ?? e}`);
  log('bench: 0 passed, 1 failed');
  process.exit(2);
});
