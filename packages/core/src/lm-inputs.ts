import * as tf from '@tensorflow/tfjs-core';
import { assertDtype, assertShape } from './shape-checks';
import { IGNORE_INDEX } from './cross-entropy';

/**
 * Where the soft visual prompt goes in the frozen LM's input:
 * - `'lavis'`: the projected queries are prepended to the text embeddings (LAVIS `blip2_opt.py`,
 *   `blip2_t5.py`; legacy Hugging Face configs without `image_token_index`).
 * - `'hf'`: `input_ids` already hold `numQueryTokens` image placeholder ids per row (before BOS,
 *   see {@link addImagePlaceholders}); their embeddings are replaced, in row-major order, by the
 *   projected queries (Hugging Face `Blip2ForConditionalGeneration`, `masked_scatter`).
 */
export type LmInputLayout = 'lavis' | 'hf';

/** Arguments of {@link buildLmInputs}. */
export interface BuildLmInputsArgs {
  /** See {@link LmInputLayout}. */
  layout: LmInputLayout;
  /** The projected query outputs `language_projection(query_output)` `[b, Q, D]`. */
  visualEmbeds: tf.Tensor;
  /** The LM token ids, int32 `[b, T]` (layout `'hf'`: with the `Q` placeholders per row). */
  inputIds: tf.Tensor;
  /** The frozen LM's token embeddings of `inputIds` (`embed_tokens(inputIds)`) `[b, T, D]`. */
  inputsEmbeds: tf.Tensor;
  /** `[b, T]`, 1 = real token, 0 = padding. Default: all real. */
  attentionMask?: tf.Tensor;
  /**
   * How many leading real text tokens of each row are prompt (or instruction), which get no
   * loss: counted from the first token with mask 1 that is not an image placeholder, BOS
   * included when the tokenizer adds one (LAVIS' `prompt_length`). A number for every row or
   * one per row. Default: `0`.
   */
  promptLength?: number | readonly number[];
  /** The image placeholder id (Hugging Face `image_token_index`). Required for layout `'hf'`. */
  imageTokenIndex?: number;
}

/** What {@link buildLmInputs} returns; new tensors owned by the caller. */
export interface LmInputs {
  /** `[b, L, D]`: `L = Q + T` (lavis) or `T` (hf). */
  inputsEmbeds: tf.Tensor3D;
  /** int32 `[b, L]`: 1 on the visual prompt and real tokens, 0 on padding. */
  attentionMask: tf.Tensor2D;
  /**
   * int32 `[b, L]`: the token ids, with -100 on the visual prompt (query) positions, prompt
   * positions and padding. Aligned with the inputs (Hugging Face convention); the LM loss shifts
   * them ({@link causalLmLoss}).
   */
  labels: tf.Tensor2D;
}

/**
 * BLIP-2 stages 2 and 3: builds the frozen language model's input from the projected Q-Former
 * outputs, a soft visual prompt in front of the prompt/text embeddings, with the matching attention
 * mask and LM labels that are -100 exactly on the query, prompt and padding positions.
 * Stage 3 (instruction tuning) is the same call with the instruction as the prompt.
 *
 * @example
 * ```ts
 * // LAVIS: [Q visual tokens ; BOS "a photo of" "a cat"], loss only on "a cat"
 * const lm = buildLmInputs({ layout: 'lavis', visualEmbeds: projected, inputIds, inputsEmbeds: embedTokens(inputIds), attentionMask, promptLength: 4 });
 * lm.inputsEmbeds.shape; // [b, Q + T, D]
 * const loss = causalLmLoss(frozenLm({ inputsEmbeds: lm.inputsEmbeds, attentionMask: lm.attentionMask }), lm.labels);
 *
 * // Hugging Face: input_ids = [image_token_index]*Q + [pad]*k + [BOS] + prompt + answer
 * const hf = buildLmInputs({ layout: 'hf', visualEmbeds: projected, inputIds: hfIds, inputsEmbeds: embedTokens(hfIds), attentionMask: hfMask, imageTokenIndex: 108, promptLength: 4 });
 * hf.inputsEmbeds.shape; // [b, T, D]
 * ```
 */
export function buildLmInputs(args: BuildLmInputsArgs): LmInputs {
  const { layout, visualEmbeds, inputIds, inputsEmbeds, attentionMask } = args;
  if (layout !== 'lavis' && layout !== 'hf') throw new Error(`buildLmInputs: layout must be 'lavis' or 'hf', got '${String(layout)}'`);
  assertShape(visualEmbeds, [null, null, null], 'buildLmInputs visualEmbeds', ['batch', 'queries', 'lmHidden']);
  const [b, Q, D] = visualEmbeds.shape as [number, number, number];
  assertDtype(inputIds, ['int32'], 'buildLmInputs inputIds');
  assertShape(inputIds, [b, null], 'buildLmInputs inputIds', ['batch', 'length']);
  const T = inputIds.shape[1]!;
  assertShape(inputsEmbeds, [b, T, D], 'buildLmInputs inputsEmbeds', ['batch', 'length', 'lmHidden']);
  if (attentionMask) assertShape(attentionMask, [b, T], 'buildLmInputs attentionMask', ['batch', 'length']);
  const prompt = typeof args.promptLength === 'number' || args.promptLength === undefined ? new Array<number>(b).fill(args.promptLength ?? 0) : [...args.promptLength];
  if (prompt.length !== b || prompt.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new Error(`buildLmInputs promptLength: expected a non-negative integer or ${b} of them (one per row), got ${JSON.stringify(args.promptLength)}`);
  }
  const ids = inputIds.arraySync() as number[][];
  const mask = attentionMask ? (attentionMask.arraySync() as number[][]).map((r) => r.map((v) => (v ? 1 : 0))) : ids.map((r) => r.map(() => 1));

  if (layout === 'lavis') {
    const labels = ids.map((row, r) => [...new Array<number>(Q).fill(IGNORE_INDEX), ...textLabels(row, mask[r]!, prompt[r]!, () => false)]);
    return tf.tidy(() => ({
      inputsEmbeds: tf.concat([visualEmbeds, inputsEmbeds], 1) as tf.Tensor3D, // [b, Q + T, D]
      attentionMask: tf.tensor2d(mask.map((r) => [...new Array<number>(Q).fill(1), ...r]), [b, Q + T], 'int32'),
      labels: tf.tensor2d(labels, [b, Q + T], 'int32'),
    }));
  }

  const image = args.imageTokenIndex;
  if (image === undefined) throw new Error("buildLmInputs: layout 'hf' needs imageTokenIndex (the config's image_token_index)");
  const isImage = (v: number) => v === image;
  const count = ids.reduce((n, row) => n + row.filter(isImage).length, 0);
  if (count !== b * Q) {
    throw new Error(`buildLmInputs: expected batch·numQueryTokens = ${b}·${Q} = ${b * Q} image placeholder tokens (id ${image}) in inputIds, got ${count}`);
  }
  // masked_scatter: the k-th placeholder of the flattened batch gets visual row k.
  const select = new Float32Array(b * T * b * Q); // [b·T, b·Q]
  const where = new Uint8Array(b * T);
  let k = 0;
  ids.forEach((row, r) =>
    row.forEach((v, t) => {
      if (!isImage(v)) return;
      select[(r * T + t) * b * Q + k++] = 1;
      where[r * T + t] = 1;
    }),
  );
  const labels = ids.map((row, r) => textLabels(row, mask[r]!, prompt[r]!, isImage));
  return tf.tidy(() => {
    const scattered = tf.reshape(tf.matMul(tf.tensor2d(select, [b * T, b * Q]), tf.reshape(visualEmbeds, [b * Q, D])), [b, T, D]);
    const isPlaceholder = tf.cast(tf.tensor3d(where, [b, T, 1], 'int32'), 'bool');
    return {
      inputsEmbeds: tf.where(tf.broadcastTo(isPlaceholder, [b, T, D]), scattered, inputsEmbeds) as tf.Tensor3D, // [b, T, D]
      attentionMask: tf.tensor2d(mask, [b, T], 'int32'),
      labels: tf.tensor2d(labels, [b, T], 'int32'),
    };
  });
}

// Labels of one row: -100 on placeholders, padding and the first `prompt` real text tokens.
function textLabels(row: number[], mask: number[], prompt: number, isImage: (v: number) => boolean): number[] {
  let seen = 0;
  return row.map((v, t) => {
    if (isImage(v) || !mask[t]) return IGNORE_INDEX;
    return seen++ < prompt ? IGNORE_INDEX : v;
  });
}

/** Arguments of {@link addImagePlaceholders}. */
export interface AddImagePlaceholdersArgs {
  /** Tokenized prompts (with BOS, possibly left-padded), int32 `[b, T]`. */
  inputIds: tf.Tensor;
  /** `[b, T]`, default all ones. */
  attentionMask?: tf.Tensor;
  /** `Q`, the Q-Former's query count. */
  numQueryTokens: number;
  /** Hugging Face `image_token_index`. */
  imageTokenIndex: number;
}

/**
 * What Hugging Face's `Blip2Processor` does to tokenized text: prepends `numQueryTokens` image
 * placeholder ids (mask 1) to every row, before BOS and before any left padding.
 *
 * @example
 * ```ts
 * const { inputIds, attentionMask } = addImagePlaceholders({ inputIds: tf.tensor2d([[2, 9, 10]], undefined, 'int32'), numQueryTokens: 2, imageTokenIndex: 108 });
 * inputIds.arraySync();      // [[108, 108, 2, 9, 10]]
 * attentionMask.arraySync(); // [[1, 1, 1, 1, 1]]
 * ```
 */
export function addImagePlaceholders(args: AddImagePlaceholdersArgs): {
  /** int32 `[b, Q + T]`: `Q` copies of `imageTokenIndex`, then the given ids. */
  inputIds: tf.Tensor2D;
  /** int32 `[b, Q + T]`: `Q` ones for the placeholders, then the given mask (all ones when absent). */
  attentionMask: tf.Tensor2D;
} {
  const { inputIds, attentionMask, numQueryTokens: Q, imageTokenIndex } = args;
  assertDtype(inputIds, ['int32'], 'addImagePlaceholders inputIds');
  assertShape(inputIds, [null, null], 'addImagePlaceholders inputIds', ['batch', 'length']);
  const [b, T] = inputIds.shape as [number, number];
  if (attentionMask) assertShape(attentionMask, [b, T], 'addImagePlaceholders attentionMask', ['batch', 'length']);
  return tf.tidy(() => ({
    inputIds: tf.concat([tf.fill([b, Q], imageTokenIndex, 'int32'), inputIds], 1) as tf.Tensor2D,
    attentionMask: tf.concat([tf.ones([b, Q], 'int32'), attentionMask ? tf.cast(attentionMask, 'int32') : tf.ones([b, T], 'int32')], 1) as tf.Tensor2D,
  }));
}
