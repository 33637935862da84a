import { defineConfig } from 'tsup';
import library from '../../tsup.library';

// Two entries: the browser-safe core (src/index.ts) and the Node-only part (src/node.ts:
// file checkpoints, the safetensors feature store, the JSON-lines log, the progress bar).
export default defineConfig({ ...(library as object), entry: ['src/index.ts', 'src/node.ts'] });
