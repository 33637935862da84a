// Adds up the unit-test and golden results of scripts/test.sh into one closing line.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
let passed = 0;
let failed = 0;
for (const file of readdirSync(dir)) {
  const path = join(dir, file);
  if (file.endsWith('.jsonl')) continue; // data (the benchmark's JSON lines), not a result
  if (file.endsWith('.json')) {
    const r = JSON.parse(readFileSync(path, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    console.error(`${file}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  } else {
    const m = /: (\d+) passed, (\d+) failed/.exec(readFileSync(path, 'utf8'));
    if (!m) throw new Error(`no result line in ${file}`);
    passed += Number(m[1]);
    failed += Number(m[2]);
    console.error(`${file}: ${m[1]} passed, ${m[2]} failed`);
  }
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
