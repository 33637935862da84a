import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX, assertDtype, assertShape } from '@vlm/core';
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

/** A training example as token ids: the prompt, then the target (see {@link tokenizePromptTarget}). */
export interface PromptTargetIds {
  /** The prompt's ids (with the tokenizer's special tokens, e.g. BOS), then the target's. */
  ids: number[];
  /** How many of `ids` are the prompt (no loss on them). */
  promptLength: number;
}

/**
 * Tokenizes a captioning / question-answering example the OpenFlamingo way: the prompt (with
 * `<image>` markers and the tokenizer's special tokens), then `target` followed by
 * `endOfChunk` (so the model learns to stop there), without special tokens.
 *
 * @example
 * ```ts
 * const ex = tokenizePromptTarget(tokenizer, '<image> a', 'red square');
 * ex.ids;          // [...ids of '<image> a', ...ids of 'red square <|endofchunk|>']
 * ex.promptLength; // the number of ids of '<image> a'
 * ```
 */
export function tokenizePromptTarget(tokenizer: LMTokenizer, prompt: string, target: string, endOfChunk = '<|endofchunk|>'): PromptTargetIds {
  const promptIds = tokenizer.encode(prompt);
  const targetIds = tokenizer.encode(`${target} ${endOfChunk}`, { addSpecialTokens: false });
  return { ids: [...promptIds, ...targetIds], promptLength: promptIds.length };
}

/** Rows for a causal-LM loss, as JS arrays (see {@link paddedLmRows}). */
export interface LmRows {
  /** `[batch, width]` ids, right-padded with the pad id. */
  inputIds: number[][];
  /** `[batch, width]`: 1 on real tokens, 0 on padding. */
  attentionMask: number[][];
  /** `[batch, width]`: the ids on the target, `IGNORE_INDEX` (-100) on the prompt and the padding. */
  labels: number[][];
}

/**
 * Right-pads examples to their longest one and masks the labels: the loss sees only the targets
 * (`causalLmLoss` of `@vlm/core` shifts them). Host arrays, so the caller can check them and make
 * tensors of the width it wants.
 *
 * @example
 * ```ts
 * const rows = paddedLmRows([{ ids: [5, 6, 7], promptLength: 2 }, { ids: [5, 8], promptLength: 1 }], 0);
 * rows.inputIds;      // [[5, 6, 7], [5, 8, 0]]
 * rows.attentionMask; // [[1, 1, 1], [1, 1, 0]]
 * rows.labels;        // [[-100, -100, 7], [-100, 8, -100]]
 * ```
 */
export function paddedLmRows(examples: readonly PromptTargetIds[], padId: number): LmRows {
  if (examples.length === 0) throw new Error('paddedLmRows: expected at least one example, got none');
  for (const [i, e] of examples.entries()) {
    if (!Number.isInteger(e.promptLength) || e.promptLength < 0 || e.promptLength > e.ids.length) {
      throw new Error(`paddedLmRows: example ${i}: expected promptLength in [0, ${e.ids.length}] (its length), got ${e.promptLength}`);
    }
  }
  const width = Math.max(...examples.map((e) => e.ids.length));
  const pad = (e: PromptTargetIds, v: number) => new Array<number>(width - e.ids.length).fill(v);
  return {
    inputIds: examples.map((e) => [...e.ids, ...pad(e, padId)]),
    attentionMask: examples.map((e) => [...e.ids.map(() => 1), ...pad(e, 0)]),
    labels: examples.map((e) => [...e.ids.map((v, t) => (t < e.promptLength ? IGNORE_INDEX : v)), ...pad(e, IGNORE_INDEX)]),
  };
}
