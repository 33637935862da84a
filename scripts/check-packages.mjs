// Package metadata every published @vlm package must carry (publint and attw check the rest):
// a LICENSE file in its tarball, the README, engines matching the root README (Node 20+),
// tfjs-core and tfjs-layers as peer dependencies (one TF.js in the user's app), a changeset-able name.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const engines = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node;
const problems = [];
for (const dir of readdirSync(join(root, 'packages'))) {
  const at = join(root, 'packages', dir);
  if (!existsSync(join(at, 'package.json'))) continue;
  const p = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8'));
  if (p.private) continue;
  const say = (what) => problems.push(`${p.name} (packages/${dir}): ${what}`);
  if (!p.name?.startsWith('@vlm/')) say(`name '${p.name}' is not in the @vlm scope`);
  for (const file of ['LICENSE', 'README.md']) {
    if (!existsSync(join(at, file))) say(`no ${file}`);
    else if (!p.files?.includes(file)) say(`'files' does not list ${file}`);
  }
  if (p.engines?.node !== engines) say(`engines.node is '${p.engines?.node}', expected '${engines}' as the root`);
  for (const peer of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']) {
    if (!p.peerDependencies?.[peer]) say(`${peer} is not a peer dependency`);
    if (p.dependencies?.[peer]) say(`${peer} is a dependency (must be a peer dependency)`);
  }
  if (p.license !== 'MIT') say(`license '${p.license}', expected MIT`);
}
for (const line of problems) console.error(`package metadata: ${line}`);
if (problems.length) process.exit(1);
console.error('package metadata: every published package has LICENSE, README, engines, peer TF.js');
