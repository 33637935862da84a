import { defineConfig, type Options } from 'tsup';
import library from '../../tsup.library';

// Two entries: the browser-safe core (src/index.ts) and `@vlm/train/node` (src/node/index.ts:
// file checkpoints, the safetensors feature store, the JSON-lines log, the progress bar).
export default defineConfig({ ...(library as Options), entry: { index: 'src/index.ts', node: 'src/node/index.ts' } });
