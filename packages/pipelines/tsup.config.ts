import { defineConfig, type Options } from 'tsup';
import library from '../../tsup.library';

// Two entries: the main one (browser-safe: imports nothing from Node) and `@vlm/pipelines/node` (folders on disk).
export default defineConfig({ ...(library as Options), entry: { index: 'src/index.ts', node: 'src/node/index.ts' } });
