import { defineConfig } from 'vitest/config';
import { readdirSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';

// Tests import each @vlm package from its TypeScript source, so a change is tested without
// rebuilding; the built dist is checked separately (publint, attw, the golden runner, the demo).
// A package's Node-only entry (`@vlm/<pkg>/node`, src/node.ts) comes before its main entry so
// that the longer name matches first.
const alias = readdirSync(resolve(__dirname, 'packages'))
  .filter((dir) => existsSync(resolve(__dirname, 'packages', dir, 'src/index.ts')))
  .flatMap((dir) => [
    ...(existsSync(resolve(__dirname, 'packages', dir, 'src/node.ts')) ? [{ find: `@vlm/${dir}/node`, replacement: resolve(__dirname, 'packages', dir, 'src/node.ts') }] : []),
    { find: `@vlm/${dir}`, replacement: resolve(__dirname, 'packages', dir, 'src/index.ts') },
  ]);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'tools/*/test/**/*.test.ts'],
    setupFiles: ['./test-setup.ts'],
    // Each file gets its own TF.js engine state; wasm init is per worker.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
