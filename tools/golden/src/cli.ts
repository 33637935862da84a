/**
 * pnpm golden [DIR] [--backend cpu|wasm] [--native] [--filter REGEX]
 *
 * Runs every reference case found under DIR (default: the repo's vendored golden/ folder)
 * through the public API of the @vlm packages, compares every output and gradient with the
 * case's tolerances, prints one line per case and exits non-zero if any case fails. With
 * `--native`, matMuls run on @vlm/native-matmul's kernels.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '@vlm/core';
import { enableNativeMatMul } from '@vlm/native-matmul';
import { adapters } from './adapters/index';
import type { GoldenCase } from './golden-case';
import { compareCase, type CaseReport } from './compare';

function parseArgs(argv: string[]) {
  let dir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../golden');
  let backend = 'cpu';
  let filter: RegExp | undefined;
  let native = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--backend') backend = argv[++i] ?? '';
    else if (a.startsWith('--backend=')) backend = a.slice('--backend='.length);
    else if (a === '--filter') filter = new RegExp(argv[++i] ?? '');
    else if (a === '--native') native = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: pnpm golden [DIR] [--backend cpu|wasm] [--native] [--filter REGEX]\n');
      process.exit(0);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else dir = resolve(a);
  }
  if (!['cpu', 'wasm'].includes(backend)) throw new Error(`--backend must be cpu or wasm, got '${backend}'`);
  return { dir, backend, filter, native };
}

/** Every `<stem>.json` that has a `<stem>.safetensors` beside it, under `dir`, recursively. */
function findCases(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...findCases(path));
    else if (entry.endsWith('.json') && existsSync(path.replace(/\.json$/, '.safetensors'))) out.push(path.replace(/\.json$/, ''));
  }
  return out;
}

/**
 * The adapter name of a case: its sidecar's `module`, else `case.hf_class` (backbone and whole
 * HF model cases), else `case.module`, else `flamingo.class` (the OpenFlamingo end-to-end cases,
 * `open_flamingo.Flamingo`).
 */
function moduleOf(sidecar: Record<string, any>): string {
  return sidecar.module ?? sidecar.case?.hf_class ?? sidecar.case?.module ?? sidecar.flamingo?.class ?? '(no module in sidecar)';
}

async function main() {
  const { dir, backend, filter, native } = parseArgs(process.argv.slice(2));
  // no "install tfjs-node" banner between the result lines (tfjs-node cannot be installed offline)
  const warn = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('tfjs-node')) warn(...args);
  };
  if (!existsSync(dir)) throw new Error(`golden folder not found: ${dir}`);
  if (!(await tf.setBackend(backend))) throw new Error(`could not start backend ${backend}`);
  await tf.ready();
  const nativeInfo = native ? enableNativeMatMul() : null;
  // A case is named by its path under DIR (`blip2/tiny-blip2-opt/case_padded`, `qformer_itm`).
  const stems = findCases(dir).filter((s) => !filter || filter.test(relative(dir, s)));
  if (stems.length === 0) throw new Error(`no cases (<name>.json + <name>.safetensors) under ${dir}`);
  process.stdout.write(`golden: ${stems.length} case(s) from ${dir} on backend ${tf.getBackend()}${nativeInfo ? ` with the native matMul (${nativeInfo.isa}, ${nativeInfo.threads} threads)` : ''}\n`);
  const reports: CaseReport[] = [];
  for (const stem of stems) {
    const name = relative(dir, stem);
    const sidecar = JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as Record<string, any>;
    const module = moduleOf(sidecar);
    const before = tf.memory().numTensors;
    let report: CaseReport;
    const { tensors } = readSafetensors(readFileSync(`${stem}.safetensors`), { source: `${name}.safetensors` });
    try {
      const adapter = adapters[module];
      if (!adapter) {
        report = { name, module, pass: false, worst: '', detail: `no adapter for module '${module}'` };
      } else {
        const c: GoldenCase = { name, sidecar, tensors, dir: dirname(stem) };
        const computed = await adapter(c);
        report = compareCase(c, module, computed);
        tf.dispose(Object.values(computed));
      }
    } catch (e) {
      report = { name, module, pass: false, worst: '', detail: `error: ${(e as Error).stack ?? e}` };
    }
    tf.dispose(Object.values(tensors));
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0 && report.pass) report = { ...report, pass: false, detail: `${leaked} tensor(s) leaked` };
    reports.push(report);
    process.stdout.write(`${report.pass ? 'PASS' : 'FAIL'}  ${name.padEnd(34)} ${module.padEnd(34)} ${report.worst}${report.detail ? `  ${report.detail}` : ''}\n`);
  }
  const failed = reports.filter((r) => !r.pass).length;
  process.stdout.write(`golden (${backend}${native ? ', native matMul' : ''}): ${reports.length - failed} passed, ${failed} failed\n`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`golden: ${(e as Error).message}\n`);
  process.exit(2);
});
