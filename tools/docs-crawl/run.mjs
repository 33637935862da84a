// Crawls the built API site (docs/api) in headless Chromium: every HTML page loads without a
// console error or a failed request, every same-site link points to a page that exists and every
// #anchor to an id on it, and the search box finds PerceiverResampler. Serves the folder on
// 127.0.0.1; Chromium is /usr/bin/chromium or $CHROMIUM. Prints `docs: N passed, M failed`.
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(fileURLToPath(import.meta.url), '../../../docs/api');
if (!existsSync(join(root, 'index.html'))) {
  console.error(`docs: ${root}/index.html not found; run \`pnpm run docs\` first`);
  console.log('docs: 0 passed, 1 failed');
  process.exit(1);
}
const decodeEntities = (s) => s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json', '.png': 'image/png' };
const server = createServer((req, res) => {
  let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path.endsWith('/')) path += 'index.html';
  if (path === '/favicon.ico') return res.writeHead(204).end(); // the browser asks; the site has none
  const file = join(root, path);
  if (!file.startsWith(root) || !existsSync(file) || statSync(file).isDirectory()) return res.writeHead(404).end();
  res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://127.0.0.1:${server.address().port}`;

let passed = 0;
let failed = 0;
const problems = [];
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'vlm-docs-chromium-')), {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  // Links and ids from the HTML as served (fast); the pages whose ids JavaScript makes (the
  // hierarchy page) are read again after their scripts ran, in Chromium.
  const pages = [];
  const walk = (dir) => readdirSync(join(root, dir), { withFileTypes: true }).forEach((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(rel);
    else if (e.name.endsWith('.html')) pages.push(rel);
  });
  walk('');
  const ids = new Map();
  const links = [];
  for (const page of pages) {
    const html = readFileSync(join(root, page), 'utf8');
    ids.set(page, new Set([...html.matchAll(/\s(?:id|name)="([^"]*)"/g)].map((m) => decodeEntities(m[1]))));
    for (const m of html.matchAll(/<a\s[^>]*href="([^"]*)"/g)) {
      const url = new URL(decodeEntities(m[1]), origin + page);
      if (url.origin !== origin) continue;
      links.push([page, url.pathname.endsWith('/') ? `${url.pathname}index.html` : url.pathname, decodeURIComponent(url.hash.slice(1))]);
    }
  }
  // Every page in Chromium: no console error, no uncaught exception, no failed request
  const problems = [];
  let next = 0;
  const visit = async () => {
    const tab = await context.newPage();
    let errors = [];
    tab.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    tab.on('pageerror', (e) => errors.push(String(e)));
    tab.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} ${r.url()}`));
    while (next < pages.length) {
      const page = pages[next++];
      errors = [];
      await tab.goto(origin + page, { waitUntil: 'load' });
      if (page === '/hierarchy.html') ids.set(page, new Set([...ids.get(page), ...(await tab.evaluate(() => [...document.querySelectorAll('[id]')].map((e) => e.id)))]));
      if (errors.length) problems.push(`${page}: ${errors.join('; ')}`);
    }
    await tab.close();
  };
  await Promise.all(Array.from({ length: Number(process.env.DOCS_CRAWL_TABS ?? 4) }, visit));
  for (const p of problems.slice(0, 30)) console.error(`      ${p}`);
  problems.length ? failed++ : passed++;
  console.error(`${problems.length ? 'FAIL' : 'PASS'}  ${pages.length} pages load in Chromium without console errors or failed requests (${problems.length} with errors)`);
  const broken = [];
  for (const [from, to, anchor] of links) {
    if (!ids.has(to) && !(existsSync(join(root, to)) && statSync(join(root, to)).isFile())) broken.push(`${from} → ${to} (no such page)`);
    else if (anchor && !ids.get(to).has(anchor)) broken.push(`${from} → ${to}#${anchor} (no such anchor)`);
  }
  const unique = [...new Set(broken)];
  for (const b of unique.slice(0, 30)) console.error(`      ${b}`);
  unique.length ? failed++ : passed++;
  console.error(`${unique.length ? 'FAIL' : 'PASS'}  ${links.length} links and anchors resolve (${unique.length} broken)`);
  const tab = await context.newPage();
  let errors = [];
  tab.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  // search
  errors = [];
  await tab.goto(`${origin}/index.html`);
  await tab.click('#tsd-search-trigger').catch(() => tab.click('#tsd-search'));
  await tab.keyboard.type('PerceiverResampler');
  const hits = await tab.waitForFunction(() => {
    const items = [...document.querySelectorAll('#tsd-search-results li, .results li')].map((li) => li.textContent ?? '');
    return items.length ? items : null;
  }, null, { timeout: 10_000 }).then((h) => h.jsonValue()).catch(() => []);
  const ok = hits.some((h) => h.includes('PerceiverResampler')) && !errors.length;
  ok ? passed++ : failed++;
  console.error(`${ok ? 'PASS' : 'FAIL'}  search finds PerceiverResampler (${hits.length} results${hits.length ? `: ${hits.slice(0, 3).map((h) => h.trim()).join(', ')}` : ''})${errors.length ? ` errors: ${errors.join('; ')}` : ''}`);
} finally {
  await context.close();
  server.close();
}
console.log(`docs: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
