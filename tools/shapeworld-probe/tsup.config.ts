import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/cli.ts'],
  format: ['esm'],
  clean: true,
  target: 'es2022',
  external: [/^@tensorflow\//, /^@vlm\//, 'nsfwjs'],
  banner: { js: '#!/usr/bin/env node' },
});
