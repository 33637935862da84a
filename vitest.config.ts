import { defineConfig } from 'vitest/config';
import { readdirSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';

// Tests import each @vlm package from its TypeScript source, so a change is tested without
// rebuilding; the built dist is checked separately (publint, attw, the golden runner, the demo).
// A package's Node-only entry (src/node/index.ts or src/node.ts) is aliased as `@vlm/<pkg>/node`;
// the anchored patterns keep `@vlm/<pkg>` from matching `@vlm/<pkg>/node`.
const alias = readdirSync(resolve(__dirname, 'packages')).flatMap((dir) =>
  [['', 'src/index.ts'], ['/node', 'src/node/index.ts'], ['/node', 'src/node.ts']]
    .filter(([, file]) => existsSync(resolve(__dirname, 'packages', dir, file)))
    .map(([sub, file]) => ({ find: new RegExp(`^@vlm/${dir}${sub}$`), replacement: resolve(__dirname, 'packages', dir, file) })),
);

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
