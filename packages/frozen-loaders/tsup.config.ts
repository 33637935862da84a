import { defineConfig, type Options } from 'tsup';
import library from '../../tsup.library';

// Two entries: the main one (browser-safe: imports nothing from Node) and `@vlm/frozen-loaders/node`
// (file reading and the pure-JS PNG/JPEG decoders).
export default defineConfig({ ...(library as Options), entry: { index: 'src/index.ts', node: 'src/node/index.ts' } });
