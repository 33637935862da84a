import { defineConfig } from 'tsup';

/**
 * The build of every published @vlm package: src/index.ts → ESM + CJS + .d.ts/.d.cts, with
 * TensorFlow.js (and sibling @vlm packages) left as imports — one TF.js instance lives in the
 * user's app.
 */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  external: [/^@tensorflow\//, /^@vlm\//],
});
