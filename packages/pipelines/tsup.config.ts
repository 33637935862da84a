import { defineConfig } from 'tsup';
import library from '../../tsup.library';

// The library build with a second, Node-only entry (`@vlm/pipelines/node`: folders on disk).
export default defineConfig({ ...(library as object), entry: ['src/index.ts', 'src/node.ts'] });
