// Browser smoke test: bundles @vlm/core with every TF.js backend, serves it on 127.0.0.1, drives
// Debian's headless Chromium (playwright-core) and checks that selectBackend starts webgpu,
// webgl, wasm and cpu there and that each gives Node's numbers (forward and gradients).
import { build } from 'esbuild';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import * as tf from '@tensorflow/tfjs';
import { workload } from './src/workload.js';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`browser: ${executablePath} not found (apt-get install -y chromium); set CHROMIUM to another Chromium`);
  console.log('browser: 0 passed, 1 failed');
  process.exit(1);
}

const bundle = await build({ entryPoints: [join(here, 'src/page.js')], bundle: true, format: 'iife', write: false, logLevel: 'warning' });
const page = `<!doctype html><meta charset="utf-8"><script>${bundle.outputFiles[0].text.replace(/<\/script/g, '<\\/script')}</script>`;
const server = createServer((req, res) => {
  if (req.url?.startsWith('/wasm/')) {
    const file = join(wasmDir, req.url.slice('/wasm/'.length).split('?')[0]);
    if (!existsSync(file)) return res.writeHead(404).end();
    return res.writeHead(200, { 'content-type': 'application/wasm' }).end(readFileSync(file));
  }
  res.writeHead(200, { 'content-type': 'text/html' }).end(page);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/`;

const args = ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'vlm-chromium-')), { executablePath, headless: true, args });
let report;
try {
  const tab = await context.newPage();
  await tab.goto(url);
  report = await tab.evaluate(() => window.runSmoke());
} finally {
  await context.close();
  server.close();
}

await tf.setBackend('cpu');
const want = await workload();
let passed = 0;
let failed = 0;
const check = (ok, what) => {
  ok ? passed++ : failed++;
  console.error(`${ok ? 'PASS' : 'FAIL'}  ${what}`);
};
check(report.default === 'webgpu', `selectBackend() default picks webgpu in Chromium (got ${report.default})`);
for (const [name, r] of Object.entries(report.backends)) {
  if (r.error) {
    check(false, `${name}: ${r.error}`);
    continue;
  }
  check(r.started === name && r.backend === name, `${name}: selectBackend started it`);
  const worst = Math.max(...['out', 'gradQuery', 'gradInProj'].flatMap((k) => want[k].map((v, i) => Math.abs(v - r[k][i]) / (1e-3 + 1e-3 * Math.abs(v)))));
  for (const k of ['out', 'gradQuery', 'gradInProj']) {
    const w = Math.max(...want[k].map((v, i) => Math.abs(v - r[k][i])));
    if (w > 1e-3) console.error(`      ${k}: max abs diff ${w.toExponential(2)}; first values want ${want[k].slice(0, 4).map((v) => v.toFixed(4))} got ${r[k].slice(0, 4).map((v) => v.toFixed(4))}`);
  }
  check(worst <= 1, `${name}: forward and gradients match Node cpu (worst ${worst.toFixed(3)}× tolerance 1e-3)`);
  check(r.leaked === 0, `${name}: no tensor leaked (${r.leaked})`);
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
