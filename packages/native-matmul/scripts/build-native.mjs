// Builds the addon with node-gyp at install time. Optional by design: where there is no
// compiler (or node-gyp, or Node's headers), it says so and exits 0, and the package's
// nativeMatMulAvailable() returns false; TF.js's stock kernels keep working.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function findNodeGyp() {
  // npm and pnpm tell install scripts where their bundled node-gyp is.
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {}
  // The node-gyp bundled with npm, next to this Node.
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(bundled) ? bundled : null;
}

const nodeGyp = findNodeGyp();
const args = ['rebuild'];
// Without a nodedir node-gyp downloads Node's headers; use the installed ones when Node has them.
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const result = nodeGyp ? spawnSync(process.execPath, [nodeGyp, ...args], { cwd: root, stdio: 'inherit' }) : null;
if (!result || result.status !== 0) {
  console.warn(
    `@vlm/native-matmul: the native addon was not built (${nodeGyp ? `node-gyp exited with ${result.status}` : 'node-gyp not found'}). ` +
      'TF.js keeps its stock matMul kernels; nativeMatMulAvailable() returns false.',
  );
} else if (process.argv.includes('--strict') === false) {
  console.log('@vlm/native-matmul: native addon built');
}
if (process.argv.includes('--strict') && (!result || result.status !== 0)) process.exit(1);
