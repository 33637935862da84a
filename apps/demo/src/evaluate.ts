import * as tf from '@tensorflow/tfjs-core';
import { generate } from '@vlm/frozen-loaders';
import type { Flamingo, SoftPromptModel } from '@vlm/pipelines';
import { COLOURS, SHAPES, type Scene } from '@vlm/shapeworld';
import { FLAMINGO_GATE_PATTERN } from '@vlm/train';
import { flamingoBatch, tokenize } from './batches';
import type { FrozenModels } from './frozen-models';
import { fewShotEpisodePrompt, fewShotVqaPrompt, gatherTokens, type Example, type FewShotEpisode, type WorldData } from './world-data';

/** A prompt with its images (bank indices, one per `<image>`). */
export interface Query {
  images: number[];
  prompt: string;
}

/**
 * Answers prompts: generated text (up to `<|endofchunk|>`, special tokens dropped), one per
 * query; `null` where the prompt (with its soft prompts) does not fit the LM's positions.
 */
export type Answerer = (queries: readonly Query[], maxNewTokens: number) => Array<string | null>;

const CHUNK = 16;

// Runs `answer` on groups of queries with the same image count, in chunks, keeping the input order.
function grouped(queries: readonly Query[], answer: (group: Query[]) => Array<string | null>): Array<string | null> {
  const out = new Array<string | null>(queries.length);
  const byCount = new Map<number, number[]>();
  queries.forEach((q, i) => byCount.set(q.images.length, [...(byCount.get(q.images.length) ?? []), i]));
  for (const idx of byCount.values()) {
    for (let s = 0; s < idx.length; s += CHUNK) {
      const part = idx.slice(s, s + CHUNK);
      answer(part.map((i) => queries[i]!)).forEach((t, j) => (out[part[j]!] = t));
    }
  }
  return out;
}

export function flamingoAnswerer(model: Flamingo, features: tf.Tensor3D): Answerer {
  return (queries, maxNewTokens) =>
    grouped(queries, (group) => {
      const tokens = gatherTokens(features, group.map((q) => q.images));
      try {
        const r = model.generate({ images: tokens, visionTokens: true, prompt: group.map((q) => q.prompt), maxNewTokens });
        tf.dispose([r.sequences, r.stepLogits]);
        return r.text!;
      } finally {
        tokens.dispose();
      }
    });
}

export function softPromptAnswerer(model: SoftPromptModel, features: tf.Tensor3D, eocId: number): Answerer {
  const limit = model.lm.info.maxPositions ?? Infinity;
  const fits = (q: Query, maxNewTokens: number) => model.tokenizer!.encode(q.prompt).length + q.images.length * (model.numVisualTokens - 1) + maxNewTokens <= limit;
  return (queries, maxNewTokens) =>
    grouped(queries, (all) => {
      const group = all.filter((q) => fits(q, maxNewTokens));
      if (group.length === 0) return all.map(() => null);
      const tokens = gatherTokens(features, group.map((q) => q.images));
      try {
        const text = model.generate({ images: tokens, visionTokens: true, prompt: group.map((q) => q.prompt), maxNewTokens, stopTokenIds: [eocId] }).text!;
        let k = 0;
        return all.map((q) => (fits(q, maxNewTokens) ? text[k++]! : null));
      } finally {
        tokens.dispose();
      }
    });
}

/** The frozen LM alone: the same prompts, `<image>` stays a plain token, no image reaches the LM. */
export function lmOnlyAnswerer(frozen: FrozenModels): Answerer {
  return (queries, maxNewTokens) =>
    grouped(queries, (group) => {
      const batch = frozen.tokenizer.encodeBatch(group.map((q) => q.prompt), { paddingSide: 'left', padTokenId: frozen.padId });
      const r = generate(frozen.lm, { inputIds: batch.inputIds, attentionMask: batch.attentionMask, maxNewTokens, stopTokenIds: [frozen.eocId] });
      return r.newTokens.map((row) => frozen.tokenizer.decode(row, { skipSpecialTokens: true }).trim());
    });
}

const firstOf = (words: readonly string[], text: string) => text.split(/\s+/).find((w) => words.includes(w));

/** Held-out accuracies: caption colour and shape (the first colour / shape word named), VQA exact match. */
export interface HeldOut {
  caption_color: number;
  caption_shape: number;
  vqa: number;
}

export interface HeldOutSamples {
  captions: string[];
  answers: string[];
}

export function heldOutScores(answer: Answerer, data: WorldData): { scores: HeldOut; samples: HeldOutSamples } {
  const captions = answer(data.heldOut.captions.map(asQuery), 12).map((t) => t ?? '');
  const answers = answer(data.heldOut.qa.map(asQuery), 4).map((t) => t ?? '');
  return { scores: { ...captionScores(captions, data.heldOut.captions.map((c) => data.bank.scenes[c.scene]!)), vqa: exact(answers, data.heldOut.qa) }, samples: { captions, answers } };
}

export function captionScores(captions: readonly string[], scenes: readonly Scene[]): Omit<HeldOut, 'vqa'> {
  let colour = 0;
  let shape = 0;
  captions.forEach((c, i) => {
    const o = scenes[i]!.objects[0]!;
    if (firstOf(COLOURS, c) === o.colour) colour++;
    if (firstOf(SHAPES, c) === o.shape) shape++;
  });
  return { caption_color: colour / captions.length, caption_shape: shape / captions.length };
}

const exact = (answers: readonly string[], examples: readonly Example[]) => answers.filter((a, i) => a.trim() === examples[i]!.target).length / Math.max(1, answers.length);

const asQuery = (e: Example): Query => ({ images: e.images, prompt: e.prompt });

// Accuracy, or null when some prompt does not fit the LM's positions (a cell the model cannot be asked).
const accuracy = (got: Array<string | null>, truth: (i: number) => string) => (got.some((a) => a === null) ? null : got.filter((a, i) => a === truth(i)).length / Math.max(1, got.length));

/** Accuracy on implied-task episodes with 0, 2 and 4 shots. */
export function fewShotEpisodes(answer: Answerer, episodes: readonly FewShotEpisode[]): Record<'0' | '2' | '4', number | null> {
  const out = {} as Record<'0' | '2' | '4', number | null>;
  for (const k of [0, 2, 4] as const) {
    out[String(k) as '0'] = accuracy(answer(episodes.map((ep) => fewShotEpisodePrompt(ep, k)), 4), (i) => episodes[i]!.answer);
  }
  return out;
}

/** VQA accuracy on held-out scenes with 0, 2 and 3 solved image–question–answer examples in the prompt. */
export function fewShotVqa(answer: Answerer, data: WorldData): Record<'0' | '2' | '3', number | null> {
  const out = {} as Record<'0' | '2' | '3', number | null>;
  for (const k of [0, 2, 3] as const) {
    out[String(k) as '0'] = accuracy(answer(data.fewShotVqa.map((item) => fewShotVqaPrompt(item, k)), 4), (i) => data.fewShotVqa[i]!.query.target);
  }
  return out;
}

/**
 * Gate ablation: for each gated block, its attention and feed-forward gates forced to 0 (the
 * block passes the text through), the held-out caption accuracy; then every gate at 0.
 */
export function gateAblation(model: Flamingo, answer: Answerer, data: WorldData): Array<{ layer: number | 'all'; caption_color: number; caption_shape: number }> {
  const gates = model.lang.namedParameters().filter(([n]) => FLAMINGO_GATE_PATTERN.test(n));
  const layerOf = (name: string) => Number(/gated_cross_attn_layers\.(\d+)\./.exec(name)![1]);
  const layers = [...new Set(gates.map(([n]) => layerOf(n)))].sort((a, b) => a - b);
  const scenes = data.heldOut.captions.map((c) => data.bank.scenes[c.scene]!);
  const run = (zero: (name: string) => boolean) => {
    const saved = gates.map(([n, v]) => [n, v, tf.clone(v)] as const);
    try {
      for (const [n, v] of saved) if (zero(n)) tf.tidy(() => v.assign(tf.zerosLike(v)));
      return captionScores(answer(data.heldOut.captions.map(asQuery), 12).map((t) => t ?? ''), scenes);
    } finally {
      for (const [, v, keep] of saved) {
        v.assign(keep);
        keep.dispose();
      }
    }
  };
  return [...layers.map((layer) => ({ layer, ...run((n) => layerOf(n) === layer) })), { layer: 'all' as const, ...run(() => true) }];
}

/**
 * Gate analysis beyond `tanh(α)`: each layer's gated updates against the hidden states they are
 * added to (`FlamingoLM.gateContributions`), averaged over the real tokens of the held-out
 * captions (prompt and caption, teacher-forced). The first layer's hidden states are the
 * embeddings (norm ~1), the later ones' tens, so a small gate there can matter as much as a
 * large one deeper (the ablation shows it).
 */
export function gateContributions(model: Flamingo, data: WorldData, features: tf.Tensor3D, tok: FrozenModels['tokenizer'], padId: number): Array<{ layer: number; attn: number; ff: number }> {
  const examples = data.heldOut.captions.map((e) => tokenize(tok, e));
  const sums = new Map<number, { attn: number; ff: number }>();
  let tokens = 0;
  for (let i = 0; i < examples.length; i += 16) {
    const b = flamingoBatch(examples.slice(i, i + 16), features, padId);
    const media = model.resample(b.visionTokens);
    const found = model.lang.gateContributions({ inputIds: b.inputIds, attentionMask: b.attentionMask, media });
    const mask = tf.cast(b.attentionMask, 'float32');
    tokens += tf.tidy(() => tf.sum(mask).dataSync()[0]!);
    for (const c of found) {
      const [attn, ff] = tf.tidy(() => [tf.sum(tf.mul(c.attn, mask)), tf.sum(tf.mul(c.ff, mask))].map((t) => t.dataSync()[0]!));
      const s = sums.get(c.layer) ?? { attn: 0, ff: 0 };
      sums.set(c.layer, { attn: s.attn + attn!, ff: s.ff + ff! });
    }
    tf.dispose([b.inputIds, b.attentionMask, b.labels, b.visionTokens, media, mask, ...found.flatMap((c) => [c.attn, c.ff])]);
  }
  return [...sums].sort(([a], [b]) => a - b).map(([layer, s]) => ({ layer, attn: s.attn / tokens, ff: s.ff / tokens }));
}
