import * as tf from '@tensorflow/tfjs-core';
import { assertDtype, assertShape } from '@vlm/core';
import { IGNORE_INDEX } from '@vlm/core';

/** Options of {@link itgDecoderInputs}. */
export interface ItgDecoderInputsOptions {
  /** The decoder start token that replaces the first token (LAVIS' `[DEC]` bos, id 30522 in its vocabulary). */
  decoderStartTokenId: number;
  /** Tokens with this id are padding (label -100). Default: `0`. */
  padTokenId?: number;
}

/** Result of {@link itgDecoderInputs}; new int32 tensors owned by the caller. */
export interface ItgDecoderInputs {
  /** `[b, T]`: the text with its first token (`[CLS]`) replaced by the decoder start token. */
  inputIds: tf.Tensor2D;
  /** `[b, T]`: `inputIds` with -100 on padding (id `padTokenId` or attention mask 0); NOT shifted, see {@link causalLmLoss}. */
  labels: tf.Tensor2D;
}

/**
 * The ITG decoder inputs of LAVIS' BLIP-2: `decoder_input_ids = input_ids` with position 0 set to
 * the decoder start token (`[DEC]`), `labels = decoder_input_ids` with padding set to -100.
 * Labels are aligned with the inputs; {@link causalLmLoss} shifts them.
 *
 * @param inputIds int32 `[b, T]`
 * @param attentionMask `[b, T]` 1 = real token (optional; padding is also found by `padTokenId`)
 *
 * @example
 * ```ts
 * const { inputIds, labels } = itgDecoderInputs(tf.tensor2d([[101, 7, 8, 0]], undefined, 'int32'), undefined, { decoderStartTokenId: 49 });
 * inputIds.arraySync(); // [[49, 7, 8, 0]]
 * labels.arraySync();   // [[49, 7, 8, -100]]
 * ```
 */
export function itgDecoderInputs(inputIds: tf.Tensor, attentionMask: tf.Tensor | undefined, options: ItgDecoderInputsOptions): ItgDecoderInputs {
  assertDtype(inputIds, ['int32'], 'ITG inputIds');
  assertShape(inputIds, [null, null], 'ITG inputIds', ['batch', 'text']);
  const [b, T] = inputIds.shape as [number, number];
  if (attentionMask) assertShape(attentionMask, [b, T], 'ITG attentionMask', ['batch', 'text']);
  const pad = options.padTokenId ?? 0;
  return tf.tidy(() => {
    const start = tf.fill([b, 1], options.decoderStartTokenId, 'int32');
    const ids = (T > 1 ? tf.concat([start, tf.slice(inputIds, [0, 1], [b, T - 1])], 1) : start) as tf.Tensor2D; // [b, T]
    let isPad = tf.equal(ids, pad);
    if (attentionMask) isPad = tf.logicalOr(isPad, tf.equal(attentionMask, 0));
    const labels = tf.where(isPad, tf.fill([b, T], IGNORE_INDEX, 'int32'), ids) as tf.Tensor2D;
    return { inputIds: ids, labels };
  });
}
