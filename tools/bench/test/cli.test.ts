// The bench CLI's --native-without flag (parsed by @vlm/native-matmul's parseNativeWithout) and
// the native_kernels field of its JSON lines, through the built CLI at its smallest size.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { nativeMatMulAvailable } from '@vlm/native-matmul';

const cli = resolve(__dirname, '../dist/cli.js');
const backend = process.env.VLM_BACKEND ?? 'cpu';
// As in packages/native-matmul's suite: the addon must be built unless VLM_NATIVE_OPTIONAL=1.
const skipNative = process.env.VLM_NATIVE_OPTIONAL === '1' && !nativeMatMulAvailable();

function bench(...args: string[]) {
  expect(existsSync(cli), `build tools/bench first (${cli})`).toBe(true);
  const r = spawnSync(process.execPath, [cli, '--backend', backend, ...args], { encoding: 'utf8' });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { status: r.status, stderr: r.stderr, lines };
}

describe('bench --native-without', () => {
  test.skipIf(skipNative).each([
    [[], ['matMul', 'gelu', 'layerNorm']],
    [['--native-without', 'gelu'], ['matMul', 'layerNorm']],
    [['--native-without=layerNorm'], ['matMul', 'gelu']],
    [['--native-without', ' gelu , layerNorm '], ['matMul']],
  ])('--native %j → native_kernels %j', (flags, kernels) => {
    const r = bench('--quick', '--only', 'xattn_seed', '--modes', 'infer', '--iters', '1', '--warmup', '0', '--native', ...flags);
    expect(r.status, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0].native_kernels).toEqual(kernels);
  });

  test('on the stock kernels native_kernels is null', () => {
    const r = bench('--quick', '--only', 'xattn_seed', '--modes', 'infer', '--iters', '1', '--warmup', '0');
    expect(r.status, r.stderr).toBe(0);
    expect(r.lines.map((l) => l.native_kernels)).toEqual([null]);
  });

  // The parser's own cases are in packages/native-matmul/test/optional-kernels.test.ts.
  const expected = '--native-without: expected a comma-separated list of gelu, layerNorm (each at most once); got';
  test.each([
    [',', `${expected} ',' (an empty list)`],
    ['gelu,gelu', `${expected} 'gelu,gelu' ('gelu' named more than once)`],
  ])('--native-without %j: exit 2 before any run, saying what was expected', (value, message) => {
    const r = bench('--native', '--native-without', value);
    expect([r.status, r.lines]).toEqual([2, []]);
    expect(r.stderr).toContain(message);
  });

  test('a flag without its value, or without --native, is an error', () => {
    const last = bench('--native', '--native-without');
    expect(last.status).toBe(2);
    expect(last.stderr).toContain(`${expected} '' (an empty list)`);
    const alone = bench('--native-without', 'gelu');
    expect(alone.status).toBe(2);
    expect(alone.stderr).toContain('--native-without leaves kernels out of --native');
  });
});
