import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test, vi } from 'vitest';
import { withoutReadbackChecks } from '@vlm/core';
import { checkMediaCount, mediaAttentionMask, mediaLocationsFromIds, textTime } from '@vlm/gated-xattn';

describe('media locations', () => {
  test('from token ids and the <image> id; text time is the cumulative image count', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const ids = tf.tensor2d([[2, 97, 11, 12, 97, 13], [97, 1, 1, 1, 1, 1]], undefined, 'int32');
      const loc = mediaLocationsFromIds(ids, 97);
      expect(loc.dtype).toBe('bool');
      expect(loc.arraySync()).toEqual([[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]]); // bools read back as 0/1
      expect(textTime(loc).arraySync()).toEqual([[0, 1, 1, 1, 2, 2], [1, 1, 1, 1, 1, 1]]);
      // numeric (U8 read as int32, or float) works the same
      expect(textTime(tf.cast(loc, 'int32')).arraySync()).toEqual([[0, 1, 1, 1, 2, 2], [1, 1, 1, 1, 1, 1]]);
      // use_cached_media: every token gets the row's image count
      expect(textTime(loc, { useCachedMedia: true, length: 2 }).arraySync()).toEqual([[2, 2], [1, 1]]);
      // continuing after cached tokens
      const next = tf.tensor2d([[0, 1], [0, 0]], undefined, 'int32');
      expect(textTime(next, { offset: tf.tensor1d([2, 1], 'int32') }).arraySync()).toEqual([[2, 3], [1, 1]]);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('the media mask: immediate vs all previous, and tokens before the first image attend nothing', () => {
    tf.tidy(() => {
      const time = tf.tensor2d([[0, 1, 1, 2]], undefined, 'int32');
      const imm = mediaAttentionMask(time, [1, 2, 2, 8], true);
      const all = mediaAttentionMask(time, [1, 2, 2, 8], false);
      expect(imm.allowed.shape).toEqual([1, 1, 4, 4]);
      expect(imm.allowed.dtype).toBe('bool');
      expect(imm.allowed.arraySync()).toEqual([[[[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]]]]);
      expect(all.allowed.arraySync()).toEqual([[[[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]]]);
      expect(imm.hasMedia.arraySync()).toEqual([[[0], [1], [1], [1]]]);
    });
  });

  test('the media mask against the rule, element by element: every text time 0…T (and past T, without the count check), both modes, odd sizes', () => {
    const before = tf.memory().numTensors;
    const [b, n, T, m] = [3, 7, 3, 5];
    const times = Array.from({ length: b }, (_, r) => Array.from({ length: n }, (_, i) => (r * n + i) % (T + 2))); // 0…T+1
    for (const immediate of [true, false]) {
      const time = tf.tensor2d(times, [b, n], 'int32');
      const { allowed, hasMedia } = withoutReadbackChecks(() => mediaAttentionMask(time, [b, T, m, 4], immediate));
      expect(allowed.dtype).toBe('bool');
      expect(allowed.shape).toEqual([b, 1, n, T * m]);
      const got = allowed.arraySync() as number[][][][];
      for (let r = 0; r < b; r++) {
        for (let i = 0; i < n; i++) {
          const t = times[r]![i]!;
          const want = Array.from({ length: T * m }, (_, j) => {
            const mediaTime = Math.floor(j / m) + 1;
            return +(immediate ? t === mediaTime : t >= mediaTime);
          });
          expect(got[r]![0]![i], `immediate=${immediate} row ${r} token ${i} (text time ${t})`).toEqual(want);
        }
      }
      expect((hasMedia.arraySync() as number[][][]).flat(2)).toEqual(times.flat().map((t) => +(t > 0)));
      tf.dispose([time, allowed, hasMedia]);
    }
    const none = tf.zeros([2, 0], 'int32');
    const empty = mediaAttentionMask(none, [2, 1, 3, 4], true);
    expect(empty.allowed.shape).toEqual([2, 1, 0, 3]);
    tf.dispose([none, empty.allowed, empty.hasMedia]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('naming more images than the media holds, or shapes that do not fit, is an error naming both', () => {
    const time = tf.tensor2d([[0, 1, 2, 3]], undefined, 'int32');
    expect(() => mediaAttentionMask(time, [1, 2, 6, 24], true)).toThrow(/names 3 image\(s\) in row 0 .*media has shape \[1, 2, 6, 24\]: expected at most 2/);
    expect(() => mediaAttentionMask(time, [2, 3, 6, 24], true)).toThrow(/expected shape \[batch=1, media, tokens, dimVisual\], got \[2, 3, 6, 24\]/);
    const r1 = tf.tensor1d([1, 0], 'int32');
    expect(() => textTime(r1)).toThrow(/expected shape \[batch, tokens\], got \[2\]/);
    expect(() => mediaLocationsFromIds(r1, 3)).toThrow(/expected shape \[batch, tokens\], got \[2\]/);
    tf.dispose([time, r1]);
  });

  test('the image count: checked on the host by checkMediaCount; mediaAttentionMask reads the text time back only outside withoutReadbackChecks', () => {
    expect(() => checkMediaCount([1, 2], [2, 2, 64, 32])).not.toThrow();
    expect(() => checkMediaCount([1, 3], [2, 2, 64, 32], 'my ids')).toThrow(
      'media_locations names 3 image(s) in row 1 (my ids), but media has shape [2, 2, 64, 32]: expected at most 2 <image> marker(s) per row',
    );
    const time = tf.tensor2d([[0, 1, 1, 2]], undefined, 'int32');
    const before = tf.memory().numTensors;
    expect(() => mediaAttentionMask(time, [1, 1, 3, 8], true)).toThrow(/names 2 image\(s\) in row 0 \(text time \[1, 4\]\)/);
    const reads = vi.spyOn(tf.engine(), 'readSync');
    const checked = mediaAttentionMask(time, [1, 2, 3, 8], true);
    expect(reads.mock.calls.length).toBeGreaterThan(0);
    reads.mockClear();
    const unchecked = withoutReadbackChecks(() => mediaAttentionMask(time, [1, 2, 3, 8], true));
    expect(reads.mock.calls.length).toBe(0);
    reads.mockRestore();
    expect(unchecked.allowed.arraySync()).toEqual(checked.allowed.arraySync());
    tf.dispose([checked, unchecked] as unknown as tf.TensorContainer);
    expect(tf.memory().numTensors).toBe(before);
    time.dispose();
  });
});
