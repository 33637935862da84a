import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/cli.ts', 'src/pretrain.ts'],
  format: ['esm'],
  clean: true,
  target: 'es2022',
  external: [/^@tensorflow\//, /^@vlm\//],
  banner: { js: '#!/usr/bin/env node' },
});
