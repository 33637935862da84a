import * as tf from '@tensorflow/tfjs-core';
import type { LMTokenizer } from '@vlm/frozen-loaders';
import { paddedLmRows, tokenizePromptTarget, type SoftPromptModel } from '@vlm/pipelines';
import type { Dataset } from '@vlm/train';
import { worldRandom, shuffled } from '@vlm/shapeworld';
import { gatherTokens, type Example } from './world-data';

/** An example as token ids: the prompt (with BOS) and then the target and `<|endofchunk|>`. */
export interface Tokenized {
  ids: number[];
  /** Tokens of the prompt part (BOS and `<image>` markers included). */
  promptLength: number;
  images: number[];
}

export function tokenize(tok: LMTokenizer, ex: Example): Tokenized {
  return { ...tokenizePromptTarget(tok, ex.prompt, ex.target), images: ex.images };
}

/** Examples grouped by their number of images and cut into batches (seeded), so a batch has one image count. */
export function batchUnits(examples: readonly Tokenized[], batchSize: number, seed: number): Tokenized[][] {
  const groups = new Map<number, Tokenized[]>();
  for (const ex of examples) groups.set(ex.images.length, [...(groups.get(ex.images.length) ?? []), ex]);
  const units: Tokenized[][] = [];
  for (const [k, group] of [...groups.entries()].sort(([a], [b]) => a - b)) {
    const order = shuffled(worldRandom(seed + k), group);
    for (let i = 0; i < order.length; i += batchSize) units.push(order.slice(i, i + batchSize));
  }
  return units;
}

const padRight = (rows: number[][], value: number) => {
  const width = Math.max(...rows.map((r) => r.length));
  return rows.map((r) => [...r, ...new Array<number>(width - r.length).fill(value)]);
};

/** A Flamingo batch: ids (right-padded), mask, labels (-100 on prompt and padding), vision tokens `[b, K, n, d]`. */
export type FlamingoBatch = { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D; labels: tf.Tensor2D; visionTokens: tf.Tensor4D };

export function flamingoBatch(unit: Tokenized[], features: tf.Tensor3D, padId: number, swap?: ContextSwap): FlamingoBatch {
  const rows = paddedLmRows(unit, padId);
  const read = swap ? paddedLmRows(swapContextWords(unit, swap), padId).inputIds : rows.inputIds;
  return {
    inputIds: tf.tensor2d(read, undefined, 'int32'),
    attentionMask: tf.tensor2d(rows.attentionMask, undefined, 'int32'),
    labels: tf.tensor2d(rows.labels, undefined, 'int32'),
    visionTokens: gatherTokens(features, unit.map((u) => u.images)),
  };
}

/**
 * A soft-prompt batch: ids with `numVisualTokens` placeholders per image, mask, per-row prompt
 * length, vision tokens; with a context swap, the ids as read and the true ids as `labels`.
 */
export type SoftPromptBatch = { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D; visionTokens: tf.Tensor4D; promptLength: number[]; labels?: tf.Tensor2D };

export function softPromptBatch(model: Pick<SoftPromptModel, 'expandImageTokens'>, unit: Tokenized[], features: tf.Tensor3D, padId: number, imageId: number, swap?: ContextSwap): SoftPromptBatch {
  const k = unit[0]!.images.length;
  const expanded = model.expandImageTokens(unit.map((u) => u.ids), k);
  const ids = padRight(expanded, padId);
  const read = swap ? padRight(model.expandImageTokens(swapContextWords(unit, swap).map((u) => u.ids), k), padId) : ids; // a swap keeps every length
  const mask = expanded.map((row) => ids[0]!.map((_, t) => (t < row.length ? 1 : 0)));
  // buildLmInputs counts the prompt in real text tokens that are not placeholders
  const promptLength = unit.map((u) => u.ids.slice(0, u.promptLength).filter((v) => v !== imageId).length);
  return {
    inputIds: tf.tensor2d(read, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    visionTokens: gatherTokens(features, unit.map((u) => u.images)),
    promptLength,
    ...(swap ? { labels: tf.tensor2d(ids, undefined, 'int32') } : {}),
  };
}

/** Which words of the target text are read swapped for another of them, how often, and the draw's seed. */
export interface ContextSwap {
  words: readonly number[];
  rate: number;
  seed: number;
}

/**
 * Teacher forcing with a lie in the context: a target word of `swap.words` (the colours) is read,
 * with probability `swap.rate`, as another of them, while the loss still predicts the true words.
 * The word after it (the shape after "a small red") then cannot be guessed from the word before —
 * "red" was never said of a star in training — only from the image. Returns each example's ids as read.
 */
export function swapContextWords(unit: readonly Tokenized[], swap: ContextSwap): Tokenized[] {
  const rng = worldRandom(swap.seed);
  return unit.map((u) => ({
    ...u,
    ids: u.ids.map((v, t) => {
      if (t < u.promptLength || t + 1 >= u.ids.length || !swap.words.includes(v) || rng() >= swap.rate) return v;
      const others = swap.words.filter((w) => w !== v);
      return others[Math.floor(rng() * others.length)]!;
    }),
  }));
}

/**
 * Batch units as a @vlm/train data set (one unit per "example"; the trainer's batch size is 1),
 * each unit in `views` versions (`build` gets the version's number: a context swap's draw), so a
 * draw stays a pure function of the index and a resumed run sees the same batches.
 */
export function unitDataset<B>(units: Tokenized[][], build: (unit: Tokenized[], view: number) => B, views = 1): Dataset<B> {
  if (units.length === 0) throw new Error('no training batches');
  return { size: units.length * views, batch: (indices) => build(units[indices[0]! % units.length]!, Math.floor(indices[0]! / units.length)) };
}
