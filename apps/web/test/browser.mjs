// The page's browser test: serves the production build (dist/) on 127.0.0.1 with the page's own
// server (serve.mjs's vite preview, cross-origin isolation headers), opens it in Debian's headless
// Chromium (playwright-core) on webgpu (SwiftShader), webgl and wasm, and on each: captions a
// world scene with the shipped bridge (the caption must name the scene's colour and shape),
// repeats it (tensor count unchanged), trains the live bridge 20 steps (the loss falls, no tensor
// leaks), drops an image file and captions it, saves a screenshot; no console errors anywhere.
// The page reads nothing back synchronously (generateAsync, the trainer's async clipping, loss
// forwards in withoutReadbackChecks), so webgpu runs everything as webgl and wasm do.
// Then the same live training in Node (wasm), for steps/s next to the browser's.
//   node apps/web/test/browser.mjs [--backends webgpu,webgl,wasm] [--steps 20] [--out DIR] [--no-node]
import { build } from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { preview } from 'vite';
import { encodePng, renderScene, splitScenes } from '@vlm/shapeworld';

const here = dirname(fileURLToPath(import.meta.url));
const app = join(here, '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const backends = opt('backends', 'webgpu,webgl,wasm').split(',');
const steps = Number(opt('steps', '20'));
const out = opt('out', join(app, 'test-output'));
mkdirSync(out, { recursive: true });
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

let passed = 0;
let failed = 0;
const check = (ok, what) => {
  ok ? passed++ : failed++;
  console.error(`${ok ? 'PASS' : 'FAIL'}  ${what}`);
  return ok;
};
const finish = () => {
  console.log(`web: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
};
if (!existsSync(executablePath)) {
  check(false, `${executablePath} not found (apt-get install -y chromium); set CHROMIUM to another Chromium`);
  finish();
}
if (!existsSync(join(app, 'dist', 'index.html'))) {
  check(false, `no production build in ${join(app, 'dist')} (pnpm --filter @vlm/web build)`);
  finish();
}

const server = await preview({ root: app, configFile: join(app, 'vite.config.ts'), logLevel: 'warn', preview: { port: 0, host: '127.0.0.1', strictPort: false, open: false } });
const url = `http://127.0.0.1:${server.httpServer.address().port}/`;
const flags = ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'vlm-web-chromium-')), { executablePath, headless: true, args: flags, viewport: { width: 1280, height: 1000 } });
// an image that is not a world scene of the page's stream, as a PNG file
const dropped = Array.from(encodePng(renderScene(splitScenes('test-background', 1, { seed: 5, objects: 1 })[0])));
const rates = {};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

try {
  for (const backend of backends) {
    const t0 = performance.now();
    const tab = await context.newPage();
    const errors = [];
    const syncReads = []; // TF.js's webgpu backend warns at the first synchronous read of a GPU tensor
    tab.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
      if (m.type() === 'warning' && /synchronously reading data from GPU/.test(m.text())) syncReads.push(m.text());
    });
    tab.on('pageerror', (e) => errors.push(String(e)));
    const state = () => tab.evaluate(() => window.vlmWeb);
    const idle = () => tab.waitForFunction(() => !document.querySelector('#caption').disabled, null, { timeout: 900_000, polling: 250 });
    try {
      await tab.goto(`${url}?backend=${backend}&seed=0`);
      await tab.waitForFunction(() => window.vlmWeb && (window.vlmWeb.ready || window.vlmWeb.error), null, { timeout: 300_000, polling: 250 });
      let s = await state();
      if (!check(s.ready && s.backend === backend, `${backend}: the page started on ${s.backend || '(none)'}${s.error ? `: ${s.error}` : ''} (${((performance.now() - t0) / 1000).toFixed(1)} s)`)) continue;
      const badge = await tab.textContent('#backend-badge');
      check(badge.startsWith(backend), `${backend}: the badge says '${badge}'`);
      check(await tab.evaluate(() => crossOriginIsolated), `${backend}: the page is cross-origin isolated (COOP + COEP)`);
      // caption a world scene with the shipped (demo-trained) bridge, twice
      await tab.click('#caption');
      await idle();
      s = await state();
      const cap = s.lastCaption ?? '';
      check(cap.includes(s.scene.colour) && cap.includes(s.scene.shape), `${backend}: caption '${cap}' names the scene's colour and shape ('${s.scene.caption}')`);
      const afterFirst = s.memory.at(-1).numTensors;
      await tab.click('#new-scene');
      await idle();
      await tab.click('#caption');
      await idle();
      s = await state();
      check(s.memory.at(-1).numTensors === afterFirst, `${backend}: tensors after a second caption ${s.memory.at(-1).numTensors} = after the first ${afterFirst}`);
      const cap2 = s.lastCaption ?? '';
      console.error(`      second scene '${s.scene.caption}' → '${cap2}'`);

      // a question and a few-shot episode (the shipped bridge was trained on captions only: no answer is checked for truth)
      await tab.click('#ask');
      await idle();
      check(((await state()).lastAnswer ?? '').length > 0, `${backend}: asked '${await tab.inputValue('#question')}' → '${(await state()).lastAnswer}'`);
      await tab.click('#few-shot');
      await idle();
      const shots = await tab.$$eval('#few-shot-out figure', (f) => f.map((x) => x.textContent));
      check(shots.length === 3 && /→ \S/.test(shots[2]), `${backend}: a 2-shot episode ran (${shots.join(' | ')})`);
      await tab.screenshot({ path: join(out, `web-${backend}-shipped.png`), fullPage: true });

      // live training
      await tab.fill('#steps', String(steps));
      await tab.fill('#batch', '4');
      await tab.click('#train');
      await idle();
      s = await state();
      const tr = s.training;
      if (check(tr && tr.losses.length === steps, `${backend}: trained ${tr?.losses.length ?? 0}/${steps} live steps`)) {
        const k = Math.max(1, Math.floor(steps / 4));
        const first = mean(tr.losses.slice(0, k));
        const last = mean(tr.losses.slice(-k));
        check(last < first, `${backend}: the loss falls (mean of the first ${k} steps ${first.toFixed(3)} → last ${k} ${last.toFixed(3)})`);
        check(tr.tensorsAfter === tr.tensorsBefore, `${backend}: no tensor leaked by training (${tr.tensorsBefore} → ${tr.tensorsAfter})`);
        rates[backend] = tr.stepsPerSecond;
        console.error(`      ${tr.stepsPerSecond.toFixed(3)} steps/s (batch 4), ${tr.seconds.toFixed(1)} s; then the live bridge captions '${s.lastCaption}'`);
      }
      const gates = await tab.$$eval('#gates tbody tr', (rows) => rows.length);
      check(gates > 0, `${backend}: the gate table shows ${gates} layers`);

      // drop an image file onto the image
      await tab.evaluate((bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
        document.querySelector('#drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, dropped);
      await tab.waitForFunction(() => document.querySelector('#truth').textContent.includes('dropped.png'), null, { timeout: 60_000 });
      await idle();
      await tab.click('#caption');
      await idle();
      s = await state();
      check(/^a \S+/.test(await tab.textContent('#caption-out')), `${backend}: the dropped image is captioned ('${await tab.textContent('#caption-out')}')`);
      await tab.screenshot({ path: join(out, `web-${backend}.png`), fullPage: true });
      if (backend === 'webgpu') check(syncReads.length === 0, `${backend}: no synchronous read-back from the GPU (TF.js's warning ${syncReads.length ? 'was printed' : 'was not printed'})`);
      check(errors.length === 0, `${backend}: no console errors${errors.length ? `: ${errors.slice(0, 3).join(' | ')}` : ''} (${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
    } catch (e) {
      check(false, `${backend}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      await tab.screenshot({ path: join(out, `web-${backend}-failed.png`), fullPage: true }).catch(() => {});
    } finally {
      await tab.close();
    }
  }
} finally {
  await context.close();
  await server.close();
}

if (!args.includes('--no-node')) {
  // the same live training in Node, on wasm
  const bundle = join(app, 'node_modules', '.cache', 'vlm-web', 'node-steps.mjs');
  await build({ entryPoints: [join(here, 'node-steps.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: bundle, logLevel: 'warning' });
  const { nodeStepsPerSecond } = await import(pathToFileURL(bundle).href);
  const r = await nodeStepsPerSecond(steps);
  check(r.losses.length === steps && r.leaked === 0, `node (${r.backend}): trained ${r.losses.length} live steps, ${r.leaked} tensors leaked`);
  rates[`node ${r.backend}`] = r.stepsPerSecond;
}
console.error(`live training steps/s (batch 4): ${Object.entries(rates).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
finish();
