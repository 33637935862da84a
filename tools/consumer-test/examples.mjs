// Runs the code of the package READMEs and of the docs guides as a user would: for each markdown
// file, a fresh project outside the workspace gets exactly the file's own `npm install …` lines
// (with the @vlm packages taken from tarballs packed from packages/*), then every ```ts / ```js
// block is typechecked (strict, node16) and run with Node, in order.
//
// Conventions in the markdown:
//   - a block whose first line is `// file: NAME` is written to NAME (a module the others import,
//     e.g. a worker) and not run by itself;
//   - `<!-- fixtures: NAME -->` anywhere in the file runs tools/consumer-test/fixtures/NAME.mjs
//     in the project first: it makes the files the text says the user brings (a model folder,
//     an image), small and random, under the names the code reads.
// Usage: node tools/consumer-test/examples.mjs [file.md …]   (default: packages/*/README.md and
// docs/guides/*.md). Prints `examples: N passed, M failed`.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const keep = process.argv.includes('--keep');
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = args.length ? args.map((f) => resolve(f)) : [
  ...readdirSync(join(repo, 'packages')).map((d) => join(repo, 'packages', d, 'README.md')),
  ...(existsSync(join(repo, 'docs/guides')) ? readdirSync(join(repo, 'docs/guides')).filter((f) => f.endsWith('.md')).map((f) => join(repo, 'docs/guides', f)) : []),
].filter((f) => existsSync(f));

let passed = 0;
let failed = 0;
const check = (ok, what, detail = '') => {
  ok ? passed++ : failed++;
  console.error(`${ok ? 'PASS' : 'FAIL'}  ${what}${!ok && detail ? `\n${String(detail).trim().split('\n').slice(0, 30).map((l) => `      ${l}`).join('\n')}` : ''}`);
};
const run = (cmd, argv, cwd, timeoutMs = 300_000) => new Promise((done) => {
  const child = spawn(cmd, argv, { cwd, env: { ...process.env, npm_config_update_notifier: 'false', VLM_REPO: repo } });
  let out = '';
  const timer = setTimeout(() => { out += `\n(killed after ${timeoutMs / 1000} s)`; child.kill('SIGKILL'); }, timeoutMs);
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.on('error', (e) => done({ ok: false, out: `${out}${e}` }));
  child.on('close', (code) => { clearTimeout(timer); done({ ok: code === 0, out }); });
});

/** The fenced blocks of a markdown text: { lang, code }. */
function blocks(markdown) {
  const out = [];
  const re = /^```(\w*)[^\n]*\n([\s\S]*?)^```/gm;
  for (let m; (m = re.exec(markdown)); ) {
    const before = markdown.slice(0, m.index).trimEnd();
    out.push({ lang: m[1], code: m[2], continued: before.endsWith('<!-- examples: continued -->') });
  }
  return out;
}

const t0 = performance.now();
const work = mkdtempSync(join(tmpdir(), 'vlm-examples-'));
try {
  const packs = join(work, 'packs');
  mkdirSync(packs);
  const pnpm = (process.env.PNPM ?? 'npx --yes pnpm@10.34.9').split(' ');
  const packed = spawnSync(pnpm[0], [...pnpm.slice(1), '-r', '--filter', './packages/*', 'pack', '--pack-destination', packs], { cwd: repo, encoding: 'utf8' });
  if (packed.status !== 0) throw new Error(`pnpm pack failed:\n${packed.stdout}${packed.stderr}`);
  const tarball = Object.fromEntries(readdirSync(join(repo, 'packages')).filter((d) => existsSync(join(repo, 'packages', d, 'package.json'))).map((d) => {
    const { name, version } = JSON.parse(readFileSync(join(repo, 'packages', d, 'package.json'), 'utf8'));
    return [name, join(packs, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`)];
  }));

  for (const file of files) {
    const name = relative(repo, file);
    const md = readFileSync(file, 'utf8');
    const all = blocks(md);
    const installs = all.filter((b) => b.lang === 'sh' || b.lang === 'bash').flatMap((b) => b.code.split('\n'))
      .map((l) => l.replace(/#.*/, '').trim()).filter((l) => /^npm (install|i) /.test(l));
    const code = all.filter((b) => ['ts', 'js', 'typescript', 'javascript'].includes(b.lang));
    if (!code.length) continue;
    // `// browser: NAME.ts` blocks are the consumer test's browser programs (bundled and run in
    // Chromium there): check that the text is that program, verbatim.
    for (const b of code.filter((b) => /^\/\/ browser: /.test(b.code))) {
      const program = /^\/\/ browser: (\S+)/.exec(b.code)[1];
      const file = join(here, 'project/browser', program);
      const same = existsSync(file) && readFileSync(file, 'utf8') === b.code.split('\n').slice(1).join('\n');
      check(same, `${name}: the ${program} block is tools/consumer-test/project/browser/${program} (run in Chromium by the consumer test)`);
    }
    if (code.every((b) => /^\/\/ browser: /.test(b.code))) continue;
    const dir = join(work, name.replace(/[/.]/g, '_'));
    mkdirSync(dir);
    // overrides: the @vlm packages a tarball depends on come from the tarballs too (as if published)
    const overrides = Object.fromEntries(Object.entries(tarball).map(([n, f]) => [n, `file:${relative(dir, f)}`]));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'example', private: true, type: 'module', overrides }, null, 2));
    // the file's own install lines, @vlm/* from the tarballs; then the tools to typecheck
    let ok = true;
    for (const line of installs) {
      const specs = line.split(/\s+/).slice(2).filter((s) => !s.startsWith('-')).map((s) => (tarball[s.replace(/@[^@/]*$/, '')] ? relative(dir, tarball[s.replace(/@[^@/]*$/, '')]) : s));
      const r = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...specs], dir);
      if (!r.ok) { ok = false; check(false, `${name}: \`${line}\``, r.out); }
    }
    if (!installs.length) { ok = false; check(false, `${name}: no \`npm install\` line`); }
    if (!ok) continue;
    const fixtures = [...md.matchAll(/<!-- fixtures: (\S+) -->/g)].map((m) => m[1]);
    // the checker, and the fixtures' own extra packages (`// needs: …` in the script), not saved
    const needs = fixtures.flatMap((f) => (/^\/\/ needs: (.*)$/m.exec(readFileSync(join(here, 'fixtures', `${f}.mjs`), 'utf8'))?.[1] ?? '').split(/\s+/).filter(Boolean));
    const tools = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--no-save', 'typescript@5.9.3', '@types/node@20.19.43',
      ...needs.map((n) => (tarball[n] ? relative(dir, tarball[n]) : n))], dir);
    if (!tools.ok) { check(false, `${name}: installing typescript`, tools.out); continue; }
    for (const f of fixtures) {
      cpSync(join(here, 'fixtures', `${f}.mjs`), join(dir, `fixtures-${f}.mjs`));

      const r = await run(process.execPath, [`fixtures-${f}.mjs`], dir);
      if (!r.ok) { ok = false; check(false, `${name}: fixtures ${f}`, r.out); }
    }
    if (!ok) continue;
    // `<!-- examples: continued -->` before a block: it continues the previous program
    const merged = [];
    for (const b of code.filter((b) => !/^\/\/ browser: /.test(b.code))) {
      if (b.continued && merged.length) merged.at(-1).code += `\n${b.code}`;
      else merged.push({ ...b });
    }
    const programs = [];
    merged.forEach((b, i) => {
      const m = /^\/\/ file: (\S+)/.exec(b.code);
      const ts = b.lang.startsWith('t');
      const target = m ? m[1] : `example-${i + 1}.${ts ? 'mts' : 'mjs'}`;
      mkdirSync(dirname(join(dir, target)), { recursive: true });
      writeFileSync(join(dir, target), b.code);
      if (!m) programs.push({ target, out: target.replace(/\.mts$/, '.mjs'), line: md.slice(0, md.indexOf(b.code)).split('\n').length });
    });
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'Node16', moduleResolution: 'Node16', lib: ['ES2022', 'DOM'], types: ['node'], strict: true, skipLibCheck: true, allowJs: true, checkJs: false, outDir: 'build', rootDir: '.' },
      include: ['**/*.mts', '**/*.mjs', '**/*.ts', '**/*.js'], exclude: ['node_modules', 'build', 'fixtures-*.mjs'],
    }, null, 2));
    const tsc = await run(process.execPath, [join(dir, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], dir);
    check(tsc.ok, `${name}: ${code.length} code block(s) typecheck (strict, node16)`, tsc.out);
    if (!tsc.ok) continue;
    for (const p of programs) {
      const r = await run(process.execPath, [join('build', p.out)], dir, 120_000);
      const tail = r.out.trim().split('\n').filter((l) => l && !/TensorFlow\.js in Node|^=+$|tfjs-node/.test(l)).slice(-4).join(' | ');
      check(r.ok, `${name}:${p.line}: the block runs${r.ok && tail ? ` — ${tail.slice(0, 300)}` : ''}`, r.out);
    }
  }
} catch (e) {
  check(false, 'examples aborted', e instanceof Error ? e.stack : String(e));
} finally {
  if (keep) console.error(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
console.log(`examples: ${passed} passed, ${failed} failed (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
process.exit(failed ? 1 : 0);
