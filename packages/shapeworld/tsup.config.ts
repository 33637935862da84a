import { defineConfig, type Options } from 'tsup';
import library from '../../tsup.library';

// Two entries: the browser-safe main entry and `/node` (file I/O for PNGs and the committed LM);
// shims give the CJS build of `/node` its `import.meta.url`.
export default defineConfig({ ...(library as Options), entry: ['src/index.ts', 'src/node.ts'], shims: true });
