import * as tf from '@tensorflow/tfjs-core';
import { MASK_VALUE, additiveMask, assertShape } from '@vlm/core';

/**
 * Which positions the Q-Former runs and who may attend to whom (the BLIP-2 stage-1 passes of
 * LAVIS' `blip2_qformer.py`). The sequence is `[queries (Q) ; text (T)]`.
 *
 * - `'query'`: queries only, with the image (the bridge to the LM, the ITC image side).
 * - `'text'`: text only, bidirectional, no queries and no cross-attention (the ITC text side).
 * - `'itc'`: both ITC halves in one pass: queries see only queries, text sees only text.
 * - `'itm'`: bidirectional over everything: queries and text see each other.
 * - `'itg'`: queries see only queries; text token `i` sees every query and text tokens `j <= i`.
 *
 * Text padding (`attentionMask == 0`) masks key columns only, in every mode.
 */
export type QFormerMode = 'query' | 'text' | 'itm' | 'itg' | 'itc';

/** Every {@link QFormerMode}. */
export const QFORMER_MODES: readonly QFormerMode[] = ['query', 'text', 'itm', 'itg', 'itc'];

/**
 * The boolean self-attention mask of a Q-Former pass, exactly `qformer_allowed_mask` of the
 * reference code: `allowed[b, i, j]` is true when position `i` may attend to position `j`.
 *
 * @param mode the pass, see {@link QFormerMode}.
 * @param batch batch size `b`.
 * @param numQuery number of query tokens `Q` (ignored in mode `'text'`).
 * @param textAttentionMask `[b, T]`, 1 (or true) = real token, 0 = padding; default all real.
 * @param textLen `T` (ignored in mode `'query'`; taken from `textAttentionMask` when given).
 * @returns bool `[b, L, L]`: `L = Q` (query), `T` (text) or `Q + T`.
 *
 * @example
 * ```ts
 * const pad = tf.tensor2d([[1, 1, 0]], undefined, 'int32');
 * qformerAllowedMask('itg', 1, 2, pad).arraySync()[0];
 * // query rows see queries; text rows see queries + earlier unpadded text:
 * // [[T,T,F,F,F],[T,T,F,F,F],[T,T,T,F,F],[T,T,T,T,F],[T,T,T,T,F]]
 * ```
 */
export function qformerAllowedMask(
  mode: QFormerMode,
  batch: number,
  numQuery: number,
  textAttentionMask?: tf.Tensor,
  textLen = 0,
): tf.Tensor3D {
  if (!QFORMER_MODES.includes(mode)) throw new Error(`Q-Former mode: expected one of ${QFORMER_MODES.join(', ')}, got '${String(mode)}'`);
  const Q = numQuery;
  if (mode === 'query') return tf.ones([batch, Q, Q], 'bool') as tf.Tensor3D;
  const T = textAttentionMask ? textAttentionMask.shape[1]! : textLen;
  if (textAttentionMask) assertShape(textAttentionMask, [batch, null], 'Q-Former attentionMask', ['batch', 'text']);
  const hasQueries = mode !== 'text';
  const L = (hasQueries ? Q : 0) + T;
  // Which (row, column) pairs the mode allows, the same for every batch row.
  const block = new Uint8Array(L * L);
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const qi = hasQueries && i < Q;
      const qj = hasQueries && j < Q;
      let ok: boolean;
      if (mode === 'text' || mode === 'itm') ok = true;
      else if (mode === 'itc') ok = qi === qj;
      else ok = qi ? qj : qj || j <= i; // itg: text row i sees all queries and text j <= i
      block[i * L + j] = ok ? 1 : 0;
    }
  }
  return tf.tidy(() => {
    const pad = textAttentionMask ? tf.notEqual(textAttentionMask, 0) : tf.ones([batch, T], 'bool'); // [b, T]
    const keysOk = hasQueries ? tf.concat([tf.ones([batch, Q], 'bool'), pad], 1) : pad; // [b, L]
    const allowed = tf.cast(tf.tensor3d(block, [1, L, L], 'int32'), 'bool'); // [1, L, L]
    return tf.logicalAnd(allowed, tf.reshape(keysOk, [batch, 1, L])) as tf.Tensor3D; // [b, L, L]
  });
}

/**
 * `qformer_additive_mask` of the reference code: bool `[b, L, L]` → float `[b, 1, L, L]`,
 * `0` where allowed and core's `MASK_VALUE` (`-10000`, as LAVIS and Hugging Face) elsewhere,
 * to be added to the attention logits.
 *
 * @example
 * ```ts
 * qformerAdditiveMask(qformerAllowedMask('itc', 2, 8, undefined, 7)).shape; // [2, 1, 15, 15]
 * ```
 */
export function qformerAdditiveMask(allowed: tf.Tensor): tf.Tensor4D {
  assertShape(allowed, [null, null, null], 'Q-Former allowed mask', ['batch', 'L', 'L']);
  const [b, n, m] = allowed.shape as [number, number, number];
  return tf.tidy(() => tf.reshape(additiveMask(allowed, MASK_VALUE), [b, 1, n, m]) as tf.Tensor4D);
}
