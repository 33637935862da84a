import * as tf from '@tensorflow/tfjs-core';
import {
  END_OF_CHUNK,
  IMAGE_TOKEN,
  canonicalCaption,
  episodeChunk,
  renderScene,
  sceneQuestions,
  splitEpisodes,
  splitScenes,
  worldRandom,
  type QAPair,
  type Scene,
  type SceneImage,
} from '@vlm/shapeworld';
import type { WorldSizes } from './sizes';

/** Every image the run uses, drawn once; examples refer to them by index. */
export interface ImageBank {
  scenes: Scene[];
  images: SceneImage[];
}

/** One training or evaluation example: images (bank indices, one per `<image>`), a prompt and what should follow. */
export interface Example {
  kind: 'caption' | 'qa' | 'episode';
  images: number[];
  prompt: string;
  /** The answer text (without `<|endofchunk|>`). */
  target: string;
  /** For captions and QA: the bank index of the scene asked about; for episodes the query. */
  scene: number;
  /** For QA: the question kind. */
  questionKind?: string;
  /** For episodes: the task. */
  task?: string;
}

/** An episode of few-shot evaluation: shots (bank image, answer), the query image and its answer. */
export interface FewShotEpisode {
  shots: Array<{ image: number; answer: string }>;
  query: number;
  answer: string;
  task: string;
}

/** A question asked about a held-out scene, with few-shot examples of the same kind from training scenes. */
export interface FewShotVqaItem {
  query: Example;
  shots: Example[];
}

export interface WorldData {
  bank: ImageBank;
  train: { captions: Example[]; qa: Example[]; episodes: Example[] };
  heldOut: { scenes: number[]; captions: Example[]; qa: Example[] };
  /**
   * Implied-task episodes with 4 shots (0/2/4-shot prompts are cut from them) on held-out scenes:
   * the prompt never names the task (colour, shape, size, count or position), only the shots' answers imply it.
   */
  fewShotEpisodes: FewShotEpisode[];
  /** The same on the held-out two-attribute tasks ("red star", "small star") that no training episode has. */
  fewShotMixtures: FewShotEpisode[];
  fewShotVqa: FewShotVqaItem[];
  /** Scenes for the Q-Former probe (held-out placements, single objects). */
  probeScenes: number[];
}

const VQA_KINDS = ['colour', 'shape', 'size', 'position', 'count', 'yes-no'] as const;

/** The caption prompt: the world's canonical caption of one object always starts "a …", so `<image> a` asks for a caption (the LM alone would as readily start a question). */
export const CAPTION_PROMPT = `${IMAGE_TOKEN} a`;

function captionExample(bank: ImageBank, i: number): Example {
  return { kind: 'caption', images: [i], prompt: CAPTION_PROMPT, target: canonicalCaption(bank.scenes[i]!).replace(/^an? /, ''), scene: i };
}

function qaExample(scene: number, qa: QAPair): Example {
  return { kind: 'qa', images: [scene], prompt: `${IMAGE_TOKEN} question: ${qa.question} answer:`, target: qa.answer, scene, questionKind: qa.kind };
}

/** The embedded world's data for one run: seeded, so a run repeats exactly. */
export function buildWorldData(sizes: WorldSizes, seed: number): WorldData {
  const bank: ImageBank = { scenes: [], images: [] };
  const add = (scene: Scene) => {
    bank.scenes.push(scene);
    bank.images.push(renderScene(scene));
    return bank.scenes.length - 1;
  };
  const rng = worldRandom(seed + 17);

  const trainIdx = splitScenes('train', sizes.trainScenes, { seed, objects: 1 }).map(add);
  const captions: Example[] = trainIdx.map((i) => captionExample(bank, i));
  const qa: Example[] = trainIdx.flatMap((i) => {
    const qs = sceneQuestions(bank.scenes[i]!);
    return [0, 1].map(() => qaExample(i, qs[Math.floor(rng() * qs.length)]!));
  });
  const episodes: Example[] = [];
  for (const shots of [1, 2, 3]) {
    for (const ep of splitEpisodes('train', Math.ceil(sizes.trainEpisodes / 3), { seed: seed * 7 + shots, shots })) {
      const images = ep.images.map(add);
      episodes.push({ kind: 'episode', images, prompt: ep.prompt, target: ep.query.answer, scene: images[images.length - 1]!, task: ep.task });
    }
  }

  const heldIdx = splitScenes('test-compositional', sizes.heldOutScenes, { seed, objects: 1 }).map(add);
  const heldCaptions: Example[] = heldIdx.map((i) => captionExample(bank, i));
  const heldQa: Example[] = heldIdx.map((i, k) => {
    const kind = VQA_KINDS[k % VQA_KINDS.length]!;
    const qs = sceneQuestions(bank.scenes[i]!);
    return qaExample(i, qs.find((q) => q.kind === kind) ?? qs[0]!);
  });

  const episodesOf = (split: 'validation' | 'test-tasks') =>
    splitEpisodes(split, sizes.fewShotEpisodes, { seed: seed + 99, shots: 4 }).map((ep) => ({
      shots: ep.shots.map((s) => ({ image: add(s.scene), answer: s.answer })),
      query: add(ep.query.scene),
      answer: ep.query.answer,
      task: ep.task,
    }));
  const fewShotEpisodes = episodesOf('validation');
  const fewShotMixtures = episodesOf('test-tasks');

  const byKind = new Map<string, Example[]>();
  for (const ex of qa) byKind.set(ex.questionKind!, [...(byKind.get(ex.questionKind!) ?? []), ex]);
  const fewShotVqa: FewShotVqaItem[] = heldQa.slice(0, sizes.fewShotVqa).map((query, k) => {
    const pool = byKind.get(query.questionKind!) ?? qa;
    const shots = [0, 1, 2].map((j) => pool[(k * 3 + j) % pool.length]!);
    return { query, shots };
  });

  const probeScenes = splitScenes('test-placement', sizes.probeScenes, { seed, objects: 1 }).map(add);
  return { bank, train: { captions, qa, episodes }, heldOut: { scenes: heldIdx, captions: heldCaptions, qa: heldQa }, fewShotEpisodes, fewShotMixtures, fewShotVqa, probeScenes };
}

/** An episode prompt with the last `k` of its shots (0 = the query alone). */
export function fewShotEpisodePrompt(ep: FewShotEpisode, k: number): { images: number[]; prompt: string } {
  const shots = k === 0 ? [] : ep.shots.slice(ep.shots.length - k);
  return { images: [...shots.map((s) => s.image), ep.query], prompt: `${shots.map((s) => episodeChunk(s.answer)).join('')}${IMAGE_TOKEN} answer:` };
}

/** A VQA prompt with `k` solved examples (image, question, answer) before the question. */
export function fewShotVqaPrompt(item: FewShotVqaItem, k: number): { images: number[]; prompt: string } {
  const shots = item.shots.slice(0, k);
  return {
    images: [...shots.map((s) => s.images[0]!), item.query.images[0]!],
    prompt: `${shots.map((s) => `${s.prompt} ${s.target} ${END_OF_CHUNK}`).join('')}${item.query.prompt}`,
  };
}

/** Vision tokens of bank images, gathered `[rows, images, tokens, width]`. */
export function gatherTokens(features: tf.Tensor3D, rows: readonly number[][]): tf.Tensor4D {
  const k = rows[0]!.length;
  return tf.tidy(() => {
    const g = tf.gather(features, tf.tensor1d(rows.flat(), 'int32'));
    return tf.reshape(g, [rows.length, k, g.shape[1]!, g.shape[2]!]) as tf.Tensor4D;
  });
}
