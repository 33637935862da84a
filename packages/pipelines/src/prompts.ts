import * as tf from '@tensorflow/tfjs-core';
import { assertDtype, assertShape } from '@vlm/core';
import type { LMTokenizer } from '@vlm/frozen-loaders';

/** A batch of prompts as new int32 tensors (owned by the caller). */
export interface TokenizedPrompts {
  /** int32 `[batch, T]`, left-padded. */
  inputIds: tf.Tensor2D;
  /** int32 `[batch, T]`, 1 = real token, 0 = padding. */
  attentionMask: tf.Tensor2D;
}

/**
 * Prompts as text (one string or one per row, tokenized with `tokenizer` and left-padded for
 * generation) or as ids `[batch, T]` (copied, with `attentionMask` or all ones).
 *
 * @example
 * ```ts
 * const { inputIds, attentionMask } = tokenizeBatch(tokenizer, ['<image> a', '<image> a red'], undefined, 'generate');
 * attentionMask.arraySync(); // [[0, 1, 1], [1, 1, 1]]
 * ```
 */
export function tokenizeBatch(
  tokenizer: LMTokenizer | undefined,
  prompt: string | readonly string[] | tf.Tensor,
  attentionMask: tf.Tensor | undefined,
  what: string,
): TokenizedPrompts {
  if (prompt instanceof tf.Tensor) {
    assertDtype(prompt, ['int32'], `${what} prompt ids`);
    assertShape(prompt, [null, null], `${what} prompt ids`, ['batch', 'T']);
    if (attentionMask) assertShape(attentionMask, prompt.shape, `${what} attentionMask`, ['batch', 'T']);
    return tf.tidy(() => ({
      inputIds: tf.clone(prompt) as tf.Tensor2D,
      attentionMask: (attentionMask ? tf.cast(attentionMask, 'int32') : tf.onesLike(prompt)) as tf.Tensor2D,
    }));
  }
  if (!tokenizer) throw new Error(`${what}: a text prompt needs a tokenizer (pass token ids, or give the model a tokenizer)`);
  const texts = typeof prompt === 'string' ? [prompt] : [...prompt];
  if (texts.length === 0) throw new Error(`${what}: expected at least one prompt, got none`);
  const batch = tokenizer.encodeBatch(texts, { paddingSide: 'left' });
  if (batch.inputIds[0]!.length === 0) throw new Error(`${what}: the prompts tokenize to no tokens`);
  return {
    inputIds: tf.tensor2d(batch.inputIds, undefined, 'int32'),
    attentionMask: tf.tensor2d(batch.attentionMask, undefined, 'int32'),
  };
}
