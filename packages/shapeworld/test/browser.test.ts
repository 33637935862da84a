// The generator and the PNG codec in a browser build: test/fingerprint.ts bundled by esbuild (the package's main
// entry, as a browser app would import it) and run in headless Chromium gives Node's fingerprint.
import { build } from 'esbuild';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { expect, test } from 'vitest';
import { pngFingerprint, worldFingerprint } from './fingerprint';

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

test.skipIf(!existsSync(executablePath))('browser build: same pixels and texts as Node (Chromium)', async () => {
  const bundle = await build({
    stdin: { contents: "import { pngFingerprint, worldFingerprint } from './fingerprint'; globalThis.fingerprint = worldFingerprint; globalThis.pngFingerprint = pngFingerprint;", resolveDir: __dirname, loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'iife',
    write: false,
    logLevel: 'warning',
  });
  const script = bundle.outputFiles[0]!.text;
  expect(script).not.toMatch(/require\("node:|from "node:/);
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'shapeworld-chromium-')), {
    executablePath,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    const page = await context.newPage();
    await page.setContent('<!doctype html><meta charset="utf-8">');
    await page.addScriptTag({ content: script });
    const inBrowser = await page.evaluate(() => (globalThis as unknown as { fingerprint: () => string }).fingerprint());
    expect(inBrowser).toBe(worldFingerprint());
    // PNG encode + decode (fflate) in the browser: the same bytes as in Node
    expect(await page.evaluate(() => (globalThis as unknown as { pngFingerprint: () => string }).pngFingerprint())).toBe(pngFingerprint());
  } finally {
    await context.close();
  }
});
