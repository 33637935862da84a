// Consumer test: what an npm user meets. Packs every package of packages/ (their built dist),
// installs the tarballs with npm into two fresh projects outside the workspace (Node: with the
// @tensorflow/tfjs umbrella; browser: tfjs-core + layers + the cpu and wasm backends only), then
//   - typechecks with skipLibCheck: false under node16 (no DOM lib) and bundler resolution,
//   - runs an ESM and a CJS program that compose a bridge from @vlm/core and @vlm/perceiver,
//   - bundles a browser program per package with esbuild and with Vite and runs each in
//     headless Chromium (playwright-core, /usr/bin/chromium or $CHROMIUM).
// Needs only the npm registry. Prints `consumer: N passed, M failed` and exits non-zero on a failure.
// `--keep` leaves the temporary projects in place (their paths are printed).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const keep = process.argv.includes('--keep');
/** Packages that are Node-only by design (worker threads, a native addon): no browser program. */
const NODE_ONLY = new Set(['data-parallel', 'native-matmul']);
const PINS = { tfjs: '4.22.0', typescript: '5.9.3', esbuild: '0.28.2', vite: '8.3.8', 'playwright-core': '1.64.1', '@types/node': '20.19.43' };

let passed = 0;
let failed = 0;
const check = (ok, what, detail = '') => {
  ok ? passed++ : failed++;
  if (ok) detail = '';
  console.error(`${ok ? 'PASS' : 'FAIL'}  ${what}${detail ? `\n${String(detail).trim().split('\n').slice(0, 40).map((l) => `      ${l}`).join('\n')}` : ''}`);
};
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
/** Runs a command without blocking; resolves to { ok, out }. */
const run = (cmd, args, cwd, env = {}) => new Promise((done) => {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.on('error', (e) => done({ ok: false, out: `${out}${e}` }));
  child.on('close', (code) => done({ ok: code === 0, out }));
});
/** Runs a command; returns { ok, out }. */
const sh = (cmd, args, cwd, env = {}) => {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
};

const work = mkdtempSync(join(tmpdir(), 'vlm-consumer-'));
try {
  // 1. pack
  const packs = join(work, 'packs');
  mkdirSync(packs);
  const pnpm = (process.env.PNPM ?? 'npx --yes pnpm@10.34.9').split(' ');
  const packed = sh(pnpm[0], [...pnpm.slice(1), '-r', '--filter', './packages/*', 'pack', '--pack-destination', packs], repo);
  const packages = readdirSync(join(repo, 'packages')).filter((d) => existsSync(join(repo, 'packages', d, 'package.json'))).sort();
  const tarballs = Object.fromEntries(packages.map((d) => {
    const { name, version } = JSON.parse(readFileSync(join(repo, 'packages', d, 'package.json'), 'utf8'));
    return [name, join(packs, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`)];
  }));
  const missing = Object.entries(tarballs).filter(([, f]) => !existsSync(f)).map(([n]) => n);
  check(packed.ok && !missing.length, `pack ${packages.length} packages (${elapsed()})`, packed.ok ? (missing.length ? `no tarball for ${missing}` : '') : packed.out);
  if (!packed.ok || missing.length) throw new Error('cannot go on without tarballs');

  // 2. two fresh projects
  const vlmDeps = Object.fromEntries(Object.entries(tarballs).map(([n, f]) => [n, `file:${f}`]));
  const tf = (names) => Object.fromEntries(names.map((n) => [`@tensorflow/${n}`, PINS.tfjs]));
  const projects = {
    node: { ...vlmDeps, ...tf(['tfjs', 'tfjs-core', 'tfjs-layers', 'tfjs-converter', 'tfjs-backend-wasm']), typescript: PINS.typescript, '@types/node': PINS['@types/node'] },
    browser: {
      ...Object.fromEntries(Object.entries(vlmDeps).filter(([n]) => !NODE_ONLY.has(n.split('/')[1]))),
      ...tf(['tfjs-core', 'tfjs-layers', 'tfjs-converter', 'tfjs-backend-cpu', 'tfjs-backend-wasm']),
      typescript: PINS.typescript, esbuild: PINS.esbuild, vite: PINS.vite, 'playwright-core': PINS['playwright-core'],
    },
  };
  const dirs = {};
  await Promise.all(Object.entries(projects).map(async ([kind, dependencies]) => {
    const dir = (dirs[kind] = join(work, kind));
    mkdirSync(dir);
    cpSync(join(here, 'project'), dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `vlm-consumer-${kind}`, private: true, type: 'module', dependencies }, null, 2));
    const r = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], dir, { npm_config_update_notifier: 'false' });
    const lacking = Object.keys(dependencies).filter((n) => !existsSync(join(dir, 'node_modules', n, 'package.json')));
    check(r.ok && !lacking.length, `npm install into a fresh ${kind} project (${elapsed()})`, r.ok ? (lacking.length ? `not installed: ${lacking}` : '') : r.out);
  }));
  const webgl = ['tfjs-backend-webgl', 'tfjs-backend-webgpu'].filter((b) => existsSync(join(dirs.browser, 'node_modules/@tensorflow', b)));
  check(!webgl.length, 'the browser project has neither the webgl nor the webgpu backend installed', webgl.join(', '));

  // 3. types: skipLibCheck false. TF.js 4.22's own declarations (and the @types packages it
  // brings) do not typecheck under strict without skipLibCheck (tfjs-layers' keras_format,
  // tfjs-core's DOM and Long references): those errors are counted, not failed; any error in
  // @vlm's declarations or in the programs fails.
  const UPSTREAM = /^node_modules\/(@tensorflow\/|@webgpu\/types\/|@types\/(offscreencanvas|emscripten|long|seedrandom)\/)/;
  const tsc = async (dir, config) => {
    const r = await run(process.execPath, [join(dir, 'node_modules/typescript/bin/tsc'), '-p', config], dir);
    const errors = r.out.split(/\n(?=\S)/).filter((e) => /error TS\d+/.test(e));
    const ours = errors.filter((e) => !UPSTREAM.test(e));
    return { ok: ours.length === 0 && (r.ok || errors.length > 0), out: ours.length ? ours.join('\n') : r.ok ? '' : r.out, upstream: errors.length - ours.length };
  };
  const typechecks = [
    [dirs.node, 'tsconfig.node16.json', 'node16 resolution, no DOM lib (ESM + CJS programs, every Node entry)'],
    [dirs.node, 'tsconfig.bundler.json', 'bundler resolution, no DOM lib'],
    [dirs.browser, 'tsconfig.browser.json', 'bundler resolution, DOM lib (browser programs)'],
  ];
  const results = await Promise.all(typechecks.map(([dir, config]) => tsc(dir, config)));
  for (const [i, [, , what]] of typechecks.entries()) {
    const r = results[i];
    check(r.ok, `tsc skipLibCheck: false — ${what}: no error in @vlm declarations or the programs (${r.upstream} in TF.js's own; ${elapsed()})`, r.ok ? '' : r.out);
  }

  // 4. run the Node programs (emitted by the node16 build)
  for (const file of ['bridge.mjs', 'bridge.cjs', 'every-package.mjs']) {
    const r = sh(process.execPath, [join('build', file)], dirs.node);
    check(r.ok, `node ${file}: ${r.ok ? r.out.trim().split('\n').filter((l) => / ok: |imports:/.test(l)).at(-1) : 'failed'}`, r.ok ? '' : r.out);
  }

  // 5. browser bundles in Chromium
  const programs = packages.filter((d) => !NODE_ONLY.has(d));
  for (const d of programs) check(existsSync(join(dirs.browser, 'browser', `${d}.ts`)), `a browser program for @vlm/${d}`, 'add tools/consumer-test/project/browser/<package>.ts');
  const r = sh(process.execPath, ['browser-run.mjs', ...programs.filter((d) => existsSync(join(dirs.browser, 'browser', `${d}.ts`)))], dirs.browser);
  for (const line of r.out.trim().split('\n')) {
    const m = /^(PASS|FAIL)\t(.*)$/.exec(line);
    if (m) check(m[1] === 'PASS', m[2].replace(/\\n/g, '\n').split('\n')[0], m[2].includes('\\n') ? m[2].replace(/\\n/g, '\n').split('\n').slice(1).join('\n') : '');
  }
  if (!r.ok && !/^(PASS|FAIL)\t/m.test(r.out)) check(false, 'browser-run.mjs', r.out);
} catch (e) {
  check(false, 'consumer test aborted', e instanceof Error ? e.stack : String(e));
} finally {
  if (keep) console.error(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
console.log(`consumer: ${passed} passed, ${failed} failed (${elapsed()})`);
process.exit(failed ? 1 : 0);
