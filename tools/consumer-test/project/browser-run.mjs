// Runs inside the fresh browser project: bundles browser/<pkg>.ts for each package named on the
// command line with esbuild and with Vite, serves the pages on 127.0.0.1 (wasm files under
// /wasm/), opens each in headless Chromium and prints one `PASS\t…` or `FAIL\t…` line per page.
// A page passes when its program reports success and nothing is logged to the console as an error.
import { build as esbuild } from 'esbuild';
import { build as vite } from 'vite';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';

const programs = process.argv.slice(2);
const out = (ok, what) => console.log(`${ok ? 'PASS' : 'FAIL'}\t${what.replace(/\n/g, '\\n')}`);
const html = (script) => `<!doctype html><meta charset="utf-8"><title>vlm</title><link rel="icon" href="data:,"><script type="module" src="${script}"></script>`;

// esbuild: one ES module per program
mkdirSync('dist-esbuild', { recursive: true });
for (const p of programs) {
  try {
    const t = performance.now();
    const r = await esbuild({ entryPoints: [`browser/${p}.ts`], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', outfile: `dist-esbuild/${p}.js`, logLevel: 'silent', metafile: true });
    writeFileSync(`dist-esbuild/${p}.html`, html(`./${p}.js`));
    out(true, `esbuild bundles the @vlm/${p} program (${(statSync(`dist-esbuild/${p}.js`).size / 1e6).toFixed(1)} MB, ${Math.round(performance.now() - t)} ms)`);
  } catch (e) {
    out(false, `esbuild bundles the @vlm/${p} program\n${e.message}`);
  }
}
// Vite: one multi-page build
for (const p of programs) writeFileSync(`browser/${p}.html`, html(`./${p}.ts`));
const viteOk = new Set();
try {
  const t = performance.now();
  await vite({
    root: process.cwd(), base: '/vite/', logLevel: 'error', configFile: false,
    build: { outDir: 'dist-vite', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1e5, rollupOptions: { input: Object.fromEntries(programs.map((p) => [p, `browser/${p}.html`])) } },
  });
  for (const p of programs) viteOk.add(p);
  out(true, `Vite builds the ${programs.length} programs (${Math.round(performance.now() - t)} ms)`);
} catch (e) {
  out(false, `Vite builds the programs\n${e.message}`);
}

const wasmDir = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };
const server = createServer((req, res) => {
  const url = decodeURIComponent(req.url.split('?')[0]);
  const file = url.startsWith('/wasm/') ? join(wasmDir, url.slice(6))
    : url.startsWith('/vite/') ? join('dist-vite', url.slice(6))
    : url.startsWith('/esbuild/') ? join('dist-esbuild', url.slice(9)) : null;
  if (!file || normalize(file).startsWith('..') || !existsSync(file) || statSync(file).isDirectory()) return res.writeHead(404).end();
  res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://127.0.0.1:${server.address().port}`;
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'vlm-consumer-chromium-')), {
  executablePath, headless: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  for (const p of programs) {
    for (const [bundler, url] of [['esbuild', `/esbuild/${p}.html`], ['Vite', `/vite/browser/${p}.html`]]) {
      if (bundler === 'Vite' && !viteOk.has(p)) continue;
      if (bundler === 'esbuild' && !existsSync(`dist-esbuild/${p}.js`)) continue;
      const tab = await context.newPage();
      const errors = [];
      tab.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      tab.on('pageerror', (e) => errors.push(String(e)));
      tab.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
      tab.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} ${r.url()}`));
      try {
        await tab.goto(origin + url);
        await tab.waitForFunction(() => globalThis.vlmResult !== undefined, null, { timeout: 30_000 });
        const r = await tab.evaluate(() => globalThis.vlmResult);
        out(r.ok && !errors.length, `Chromium runs the ${bundler} bundle of @vlm/${p}: ${r.ok ? r.detail : 'failed'}${r.ok ? '' : `\n${r.detail}`}${errors.length ? `\nconsole errors:\n${errors.join('\n')}` : ''}`);
      } catch (e) {
        out(false, `Chromium runs the ${bundler} bundle of @vlm/${p}\n${e.message}${errors.length ? `\n${errors.join('\n')}` : ''}`);
      } finally {
        await tab.close();
      }
    }
  }
} finally {
  await context.close();
  server.close();
}
