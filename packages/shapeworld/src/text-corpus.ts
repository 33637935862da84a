import { randomCaption } from './captions';
import { END_OF_CHUNK, EPISODE_TASKS, IMAGE_TOKEN, sampleEpisode } from './episodes';
import { sceneQuestions } from './questions';
import { mixSeed, randomChoice, randomInt, worldRandom } from './random';
import { SPLITS, splitScenes, type SplitName } from './splits';

/** The kinds of text documents the world writes. */
export const DOCUMENT_KINDS = ['caption', 'qa', 'episode'] as const;
/** A text document kind. */
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

/** One document of world text: images as `<image>`, each image's text ended by `<|endofchunk|>`. */
export interface WorldDocument {
  /** What the document is. */
  kind: DocumentKind;
  /** The text. */
  text: string;
}

/** Options of {@link worldText}. */
export interface WorldTextOptions {
  /** Seed of the stream. Default: 0. */
  seed?: number;
  /** Index of the first document (for paging). Default: 0. */
  offset?: number;
}

/**
 * The world's text, never its pixels: `count` documents about scenes of `split` — interleaved
 * captions (1–3 images, a random caption template each), question/answer chunks
 * (`<image> question: what colour is the star? answer: red <|endofchunk|>`), and few-shot
 * episodes of the training tasks (1–4 shots) — in proportions 40/30/30. What the world's frozen
 * LM is pretrained on; it learns the language and the formats but not what any image shows.
 *
 * @example
 * ```ts
 * worldText('train', 2).map((d) => d.text);
 * // ['<image> question: how many red shapes are there? answer: zero <|endofchunk|>',
 * //  '<image> answer: two <|endofchunk|><image> answer: one <|endofchunk|><image> answer: one <|endofchunk|>']
 * ```
 */
export function worldText(split: SplitName, count: number, options: WorldTextOptions = {}): WorldDocument[] {
  if (!SPLITS.includes(split)) throw new Error(`worldText: unknown split '${split}', expected one of ${SPLITS.join(', ')}`);
  if (!Number.isInteger(count) || count < 0) throw new Error(`worldText: expected a non-negative integer count, got ${count}`);
  const out: WorldDocument[] = [];
  const seed = options.seed ?? 0;
  for (let i = (options.offset ?? 0), end = i + count; i < end; i++) {
    const docSeed = mixSeed(0x7e47, SPLITS.indexOf(split), seed, i);
    const rng = worldRandom(docSeed);
    const u = rng();
    if (u < 0.4) {
      const scenes = splitScenes(split, randomInt(rng, 1, 3), { seed: docSeed });
      out.push({ kind: 'caption', text: scenes.map((s) => `${IMAGE_TOKEN} ${randomCaption(s, rng)} ${END_OF_CHUNK}`).join('') });
    } else if (u < 0.7) {
      const scenes = splitScenes(split, randomInt(rng, 1, 2), { seed: docSeed });
      out.push({
        kind: 'qa',
        text: scenes
          .map((s) => {
            const qa = randomChoice(rng, sceneQuestions(s));
            return `${IMAGE_TOKEN} question: ${qa.question} answer: ${qa.answer} ${END_OF_CHUNK}`;
          })
          .join(''),
      });
    } else {
      const ep = sampleEpisode(docSeed, { task: randomChoice(rng, EPISODE_TASKS), shots: randomInt(rng, 1, 4), sceneSplit: split });
      out.push({ kind: 'episode', text: ep.text });
    }
  }
  return out;
}
