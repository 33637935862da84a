// Serves the production build (dist/, from `vite build`) with the cross-origin isolation headers
// of vite.config.ts: `node serve.mjs [--port N] [--host H]`; prints the URL when ready.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preview } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  const v = eq ? eq.slice(name.length + 3) : i >= 0 ? args[i + 1] : undefined;
  return v ?? fallback;
};
const port = Number(opt('port', '5173'));
const host = opt('host', '127.0.0.1');
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: --port expects a port number 0-65535, got '${opt('port')}'`);
  process.exit(2);
}
if (!existsSync(join(here, 'dist', 'index.html'))) {
  console.error(`serve: no production build in ${join(here, 'dist')}: run \`pnpm --filter @vlm/web build\` (or \`npm run web\`, which builds)`);
  process.exit(1);
}
const server = await preview({ root: here, configFile: join(here, 'vite.config.ts'), logLevel: 'warn', preview: { port, host, strictPort: true, open: false } });
const address = server.httpServer.address();
console.log(`@vlm/web: serving the production build on http://${host}:${typeof address === 'object' && address ? address.port : port}/`);
