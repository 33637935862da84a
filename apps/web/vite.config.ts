import { defineConfig } from 'vite';

/**
 * Cross-origin isolation (COOP + COEP): with it `crossOriginIsolated` is true and TF.js's wasm
 * backend may start its threaded SIMD build (SharedArrayBuffer). Everything the page loads comes
 * from its own origin, so `require-corp` blocks nothing.
 */
export const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  base: './',
  server: { host: '127.0.0.1', port: 5173, headers: isolationHeaders },
  preview: { host: '127.0.0.1', port: 5173, headers: isolationHeaders },
  build: { target: 'es2022', minify: false, chunkSizeWarningLimit: 40000, reportCompressedSize: false },
  // the LM's safetensors and the wasm binaries are fetched by URL
  assetsInclude: ['**/*.safetensors'],
});
