import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  // One TensorFlow.js instance lives in the user's app: never bundle it.
  external: [/^@tensorflow\//],
});
