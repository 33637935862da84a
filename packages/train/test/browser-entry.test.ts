// The main entry runs in a browser: bundled for the browser platform, it pulls in nothing from
// Node (the bundle fails on any `node:` import); the Node-only parts are in @vlm/train/node.
import { build } from 'esbuild';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('@vlm/train main entry', () => {
  it('bundles for the browser with no Node built-in', async () => {
    const result = await build({
      entryPoints: [resolve(__dirname, '../src/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      external: ['@tensorflow/*', '@vlm/core'],
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/from ["']node:|require\(["'](fs|path|os|node:)/);
    await expect(
      build({ entryPoints: [resolve(__dirname, '../src/node/index.ts')], bundle: true, platform: 'browser', write: false, logLevel: 'silent', external: ['@tensorflow/*', '@vlm/core', 'cli-progress'] }),
    ).rejects.toThrow(/node:fs/); // the check can fail: the Node entry does not bundle for a browser
  });
});
