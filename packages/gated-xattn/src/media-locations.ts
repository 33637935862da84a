import * as tf from '@tensorflow/tfjs-core';
import { assertShape, causalMask, formatShape, readbackChecksEnabled } from '@vlm/core';

/**
 * Media locations from token ids: bool `[batch, tokens]`, true where the token is the
 * `<image>` marker (OpenFlamingo: `media_locations = lang_x == media_token_id`).
 *
 * @example
 * ```ts
 * const ids = tf.tensor2d([[2, 97, 11, 12, 97, 13]], undefined, 'int32'); // 97 = <image>
 * mediaLocationsFromIds(ids, 97).arraySync(); // [[false, true, false, false, true, false]]
 * ```
 */
export function mediaLocationsFromIds(inputIds: tf.Tensor, imageTokenId: number): tf.Tensor2D {
  if (inputIds.rank !== 2) throw new Error(`mediaLocationsFromIds inputIds: expected shape [batch, tokens], got ${formatShape(inputIds.shape)}`);
  return tf.tidy(() => tf.equal(tf.cast(inputIds, 'int32'), tf.scalar(imageTokenId, 'int32')) as tf.Tensor2D);
}

/** Options of {@link textTime}. */
export interface TextTimeOptions {
  /**
   * OpenFlamingo's `use_cached_media`: every one of `length` tokens gets the number of images in
   * its row of `mediaLocations` (the whole prompt), i.e. attends to the last image. Default: `false`.
   */
  useCachedMedia?: boolean;
  /** Number of tokens when `useCachedMedia` (then `mediaLocations` may be the prompt's). Default: its length. */
  length?: number;
  /**
   * Images already seen before these tokens, per row: int32 `[batch]` (the text time of the
   * last cached token, when continuing a sequence with a KV cache). Default: none (0).
   */
  offset?: tf.Tensor;
}

/**
 * Flamingo's text time: int32 `[batch, tokens]`, `cumsum(mediaLocations, -1)`, i.e. the
 * 1-based index of the latest image at or before each token (0: no image yet). The `<image>`
 * token itself already has the new time, so it attends to its own image.
 *
 * Computed as a product with a triangular matrix (TF.js's `cumsum` is unreliable on int32 and
 * on wasm); exact for any realistic count.
 *
 * @param mediaLocations `[batch, tokens]`, bool or numeric (non-zero = `<image>`).
 *
 * @example
 * ```ts
 * const loc = tf.tensor2d([[0, 1, 0, 0, 1, 0]], undefined, 'bool');
 * textTime(loc).arraySync();                                     // [[0, 1, 1, 1, 2, 2]]
 * textTime(loc, { useCachedMedia: true, length: 2 }).arraySync(); // [[2, 2]]
 * ```
 */
export function textTime(mediaLocations: tf.Tensor, options: TextTimeOptions = {}): tf.Tensor2D {
  if (mediaLocations.rank !== 2) {
    throw new Error(`textTime mediaLocations: expected shape [batch, tokens], got ${formatShape(mediaLocations.shape)}`);
  }
  const [b, n] = mediaLocations.shape as [number, number];
  if (options.offset) assertShape(options.offset, [b], 'textTime offset', ['batch']);
  return tf.tidy(() => {
    const loc = tf.cast(tf.notEqual(tf.cast(mediaLocations, 'float32'), 0), 'float32'); // [b, n] 0/1
    let time: tf.Tensor;
    if (options.useCachedMedia) {
      time = tf.tile(tf.sum(loc, -1, true), [1, options.length ?? n]);
    } else {
      // cumsum over tokens: t[b, i] = Σ_j loc[b, j]·[j <= i]
      time = n === 0 ? tf.zeros([b, 0]) : tf.matMul(loc, tf.cast(tf.transpose(causalMask(n)), 'float32'));
    }
    if (options.offset) time = tf.add(time, tf.reshape(tf.cast(options.offset, 'float32'), [b, 1]));
    return tf.cast(tf.round(time), 'int32') as tf.Tensor2D;
  });
}

/**
 * The cross-attention mask of one forward pass, computed once from the text time and shared
 * by every gated block (see {@link mediaAttentionMask}).
 */
export interface MediaMask {
  /** bool `[batch, 1, tokens, media·tokensPerMedia]`: true where the text token may attend the media token. */
  allowed: tf.Tensor4D;
  /** bool `[batch, tokens, 1]`: false for tokens before the first image (their output is exactly 0). */
  hasMedia: tf.Tensor3D;
}

/**
 * Builds Flamingo's media mask from the text time. Media key `j` (media-major: `j = t·m + k`)
 * has media time `⌊j / m⌋ + 1`; text token `i` may attend it iff
 * `textTime[i] == mediaTime[j]` (`onlyAttendImmediateMedia`) or `textTime[i] >= mediaTime[j]`
 * (all previous images). Tokens with text time 0 attend nothing: `hasMedia` is false there.
 *
 * Throws an Error naming the shapes when a row's text time names more images than the media
 * holds (one small read of the text time to the CPU; skipped inside `withoutReadbackChecks`
 * of `@vlm/core`, see {@link checkMediaCount}).
 *
 * @param time int32 `[batch, tokens]` from {@link textTime}.
 * @param mediaShape the shape of the media: `[batch, T, m, dimVisual]` (`T` images of `m` tokens).
 *
 * @example
 * ```ts
 * const time = textTime(tf.tensor2d([[0, 1, 0, 1]], undefined, 'bool')); // [[0, 1, 1, 2]]
 * const { allowed, hasMedia } = mediaAttentionMask(time, [1, 2, 3, 24], true);
 * allowed.shape;  // [1, 1, 4, 6]
 * hasMedia.shape; // [1, 4, 1]   ([[false], [true], [true], [true]])
 * ```
 */
export function mediaAttentionMask(time: tf.Tensor, mediaShape: readonly number[], onlyAttendImmediateMedia: boolean): MediaMask {
  if (time.rank !== 2) throw new Error(`mediaAttentionMask textTime: expected shape [batch, tokens], got ${formatShape(time.shape)}`);
  const [b, n] = time.shape as [number, number];
  if (mediaShape.length !== 4 || mediaShape[0] !== b) {
    throw new Error(`mediaAttentionMask media: expected shape [batch=${b}, media, tokens, dimVisual], got ${formatShape(mediaShape)}`);
  }
  const [, numMedia, tokensPerMedia] = mediaShape as [number, number, number, number];
  assertMediaCount(time, mediaShape);
  const keys = numMedia * tokensPerMedia;
  return tf.tidy(() => {
    const hasMedia = tf.reshape(tf.greater(time, 0), [b, n, 1]) as tf.Tensor3D;
    if (b * n * keys === 0) return { allowed: tf.zeros([b, 1, n, keys], 'bool') as tf.Tensor4D, hasMedia };
    // allowed[b, i, j] = table[textTime[b, i], j], as a product of the one-hot text time with the
    // (T + 1) × T·m table of the rule: the broadcasting int32 comparison of the wasm backend took
    // ~15 ms on the benchmark's [8, 1, 128, 128] (and its Tile ~10 ms).
    const table = new Float32Array((numMedia + 1) * keys);
    for (let t = 0; t <= numMedia; t++) {
      for (let j = 0; j < keys; j++) {
        const mediaTime = Math.floor(j / tokensPerMedia) + 1;
        table[t * keys + j] = (onlyAttendImmediateMedia ? t === mediaTime : t >= mediaTime) ? 1 : 0;
      }
    }
    let t = tf.reshape(tf.cast(time, 'int32'), [b * n]);
    // A text time past T (possible only without the count check) attends every image in the
    // all-previous mode and none in the immediate one (a one-hot past the table is all zeros).
    if (!onlyAttendImmediateMedia) t = tf.minimum(t, tf.scalar(numMedia, 'int32'));
    const rows = tf.matMul(tf.cast(tf.oneHot(t, numMedia + 1), 'float32'), tf.tensor2d(table, [numMedia + 1, keys]));
    const allowed = tf.reshape(tf.greater(rows, 0.5), [b, 1, n, keys]) as tf.Tensor4D;
    return { allowed, hasMedia };
  });
}

function assertMediaCount(time: tf.Tensor, mediaShape: readonly number[]): void {
  // skipped inside withoutReadbackChecks: the caller counted the <image> markers on the host
  if (time.size === 0 || !readbackChecksEnabled()) return;
  const maxima = tf.tidy(() => tf.max(tf.cast(time, 'int32'), -1));
  const rows = Array.from(maxima.dataSync());
  maxima.dispose();
  checkMediaCount(rows, mediaShape, `text time [${time.shape.join(', ')}]`);
}

/**
 * Checks on the host that no row names more images than the media holds: `imagesPerRow[r]`
 * (the number of `<image>` markers of row `r` so far, i.e. its largest text time) must be at most
 * `T` of `mediaShape` `[batch, T, m, dimVisual]`. Throws an Error naming the row otherwise. This
 * is the check {@link mediaAttentionMask} makes after a read-back; callers that run
 * {@link FlamingoLM.forward} in `withoutReadbackChecks` (`@vlm/core`) make it on ids they hold.
 *
 * @param source names where the counts came from, in the message
 *
 * @example
 * ```ts
 * checkMediaCount([1, 2], [2, 2, 64, 32]); // fine
 * checkMediaCount([1, 3], [2, 2, 64, 32]); // throws: media_locations names 3 image(s) in row 1 ...
 * ```
 */
export function checkMediaCount(imagesPerRow: readonly number[], mediaShape: readonly number[], source = '<image> markers'): void {
  const numMedia = mediaShape[1]!;
  const row = imagesPerRow.findIndex((c) => c > numMedia);
  if (row >= 0) {
    throw new Error(
      `media_locations names ${imagesPerRow[row]} image(s) in row ${row} (${source}), but media has shape ` +
        `${formatShape(mediaShape)}: expected at most ${numMedia} <image> marker(s) per row`,
    );
  }
}
