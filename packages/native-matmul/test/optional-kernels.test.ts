// The list of optional kernel sets and the `--native-without` parser: pure TypeScript, no addon
// needed (this file loads none; enableNativeMatMul's use of the list is tested in
// native-matmul.test.ts).
import { describe, expect, test } from 'vitest';
import { OPTIONAL_NATIVE_KERNELS, nativeKernelsWithout, parseNativeWithout } from '@vlm/native-matmul';

describe('parseNativeWithout', () => {
  test.each([
    ['gelu', ['gelu']],
    ['layerNorm', ['layerNorm']],
    ['gelu,layerNorm', ['gelu', 'layerNorm']],
    ['layerNorm,gelu', ['layerNorm', 'gelu']],
    [' gelu , layerNorm ', ['gelu', 'layerNorm']],
    ['gelu,', ['gelu']],
  ])('%j → %j', (value, expected) => {
    expect(parseNativeWithout(value)).toEqual(expected);
  });

  const expected = '--native-without: expected a comma-separated list of gelu, layerNorm (each at most once); got';
  test.each([
    ['', `${expected} '' (an empty list)`],
    [',', `${expected} ',' (an empty list)`],
    [' , ', `${expected} ' , ' (an empty list)`],
    ['foo', `${expected} 'foo' ('foo' is not one)`],
    ['gelu,foo', `${expected} 'gelu,foo' ('foo' is not one)`],
    ['gelu,foo,GELU', `${expected} 'gelu,foo,GELU' ('foo', 'GELU' are not)`],
    ['gelu,gelu', `${expected} 'gelu,gelu' ('gelu' named more than once)`],
    ['gelu,layerNorm, gelu', `${expected} 'gelu,layerNorm, gelu' ('gelu' named more than once)`],
  ])('%j is rejected', (value, message) => {
    expect(() => parseNativeWithout(value)).toThrow(new Error(message));
  });

  test('accepts every optional kernel set, and only those', () => {
    expect(parseNativeWithout(OPTIONAL_NATIVE_KERNELS.join(','))).toEqual([...OPTIONAL_NATIVE_KERNELS]);
    expect(OPTIONAL_NATIVE_KERNELS).toEqual(['gelu', 'layerNorm']);
  });
});

describe('nativeKernelsWithout', () => {
  test('one switch per optional kernel set: off for those left out, on for the rest', () => {
    expect(nativeKernelsWithout([])).toEqual({ gelu: true, layerNorm: true });
    expect(nativeKernelsWithout(['gelu'])).toEqual({ gelu: false, layerNorm: true });
    expect(nativeKernelsWithout(parseNativeWithout('layerNorm'))).toEqual({ gelu: true, layerNorm: false });
    expect(nativeKernelsWithout(['layerNorm', 'gelu'])).toEqual({ gelu: false, layerNorm: false });
  });
});
