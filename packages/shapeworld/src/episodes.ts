import { positionOf, type Scene } from './scene';
import { mixSeed, randomChoice, worldRandom } from './random';
import { splitScenes, type SplitName } from './splits';
import { NUMBER_WORDS } from './vocabulary';

/** The token that stands for an image in interleaved text (Flamingo's). */
export const IMAGE_TOKEN = '<image>';
/** The token that ends each image's chunk of text (Flamingo's). */
export const END_OF_CHUNK = '<|endofchunk|>';
/** The prompt after every image of an episode, the same for every task: only the shots say what to answer. */
export const EPISODE_PROMPT = 'answer:';

/** Tasks of the training episodes: name the colour, the shape, the size, count the shapes, say where. */
export const EPISODE_TASKS = ['colour', 'shape', 'size', 'count', 'position'] as const;
/** Task mixtures held out of training: two attributes at once ("red star", "small star"). */
export const HELD_OUT_EPISODE_TASKS = ['colour-shape', 'size-shape'] as const;
/** An episode task. */
export type EpisodeTask = (typeof EPISODE_TASKS)[number] | (typeof HELD_OUT_EPISODE_TASKS)[number];

/** One image of an episode with its answer. */
export interface EpisodeShot {
  /** The scene (render it with `renderScene`). */
  scene: Scene;
  /** What the task answers for it. */
  answer: string;
}

/**
 * An interleaved few-shot episode: `<image> answer: red <|endofchunk|>` per shot, then the
 * query `<image> answer:`; the task is implied only by the shots' answers.
 */
export interface Episode {
  /** The task the shots imply. */
  task: EpisodeTask;
  /** The solved examples. */
  shots: EpisodeShot[];
  /** The query image and its answer. */
  query: EpisodeShot;
  /** Every scene in order (shots, then the query): one per `<image>` token. */
  images: Scene[];
  /** The text up to the query's answer: `…<image> answer:`. */
  prompt: string;
  /** The whole text, with the query's answer and its `<|endofchunk|>`. */
  text: string;
}

/** The answer of a task for a scene (count tasks count objects; other tasks describe the first object). */
export function taskAnswer(task: EpisodeTask, scene: Scene): string {
  const o = scene.objects[0];
  if (!o) throw new Error('taskAnswer: expected a scene with objects, got none');
  switch (task) {
    case 'colour':
      return o.colour;
    case 'shape':
      return o.shape;
    case 'size':
      return o.size;
    case 'count':
      return NUMBER_WORDS[scene.objects.length]!;
    case 'position':
      return positionOf(o);
    case 'colour-shape':
      return `${o.colour} ${o.shape}`;
    case 'size-shape':
      return `${o.size} ${o.shape}`;
    default:
      throw new Error(`taskAnswer: unknown task '${String(task)}'`);
  }
}

/** One shot's (or the query's) text: `<image> answer: red <|endofchunk|>`. */
export function episodeChunk(answer: string): string {
  return `${IMAGE_TOKEN} ${EPISODE_PROMPT} ${answer} ${END_OF_CHUNK}`;
}

/** Options of {@link sampleEpisode}. */
export interface EpisodeOptions {
  /** The task. Default: one of {@link EPISODE_TASKS}, chosen by the seed. */
  task?: EpisodeTask;
  /** Number of shots before the query. Default: 3. */
  shots?: number;
  /** The scene split the images come from. Default: `train`. */
  sceneSplit?: SplitName;
}

/**
 * Samples a few-shot episode from a seed. Shots show at least two different answers (so the
 * task, not one answer, is what they share); scenes have one object, except for `count`
 * (1–3 objects).
 *
 * @example
 * ```ts
 * const ep = sampleEpisode(3, { task: 'shape', shots: 2 });
 * ep.prompt; // '<image> answer: circle <|endofchunk|><image> answer: triangle <|endofchunk|><image> answer:'
 * ep.query.answer; // 'square'
 * ```
 */
export function sampleEpisode(seed: number, options: EpisodeOptions = {}): Episode {
  const rng = worldRandom(mixSeed(0xe915, seed));
  const task = options.task ?? randomChoice(rng, EPISODE_TASKS);
  const nShots = options.shots ?? 3;
  if (!Number.isInteger(nShots) || nShots < 0) throw new Error(`sampleEpisode: expected a non-negative integer number of shots, got ${nShots}`);
  const objects = task === 'count' ? [1, 2, 3] : 1;
  const split = options.sceneSplit ?? 'train';
  const stream = Math.floor(rng() * 2 ** 31);
  let next = 0;
  const draw = () => {
    const scene = splitScenes(split, 1, { seed: stream, objects, offset: next++ })[0]!;
    return { scene, answer: taskAnswer(task, scene) };
  };
  const shots: EpisodeShot[] = [];
  for (let i = 0; i < nShots; i++) {
    let shot = draw();
    // The last shot must differ from the others if they all agree.
    for (let k = 0; i === nShots - 1 && nShots > 1 && shots.every((s) => s.answer === shot.answer) && k < 100; k++) shot = draw();
    shots.push(shot);
  }
  const query = draw();
  const prompt = `${shots.map((s) => episodeChunk(s.answer)).join('')}${IMAGE_TOKEN} ${EPISODE_PROMPT}`;
  return { task, shots, query, images: [...shots.map((s) => s.scene), query.scene], prompt, text: `${prompt} ${query.answer} ${END_OF_CHUNK}` };
}

/**
 * The episode splits: `train` (training tasks on `train` scenes), `validation` (training tasks
 * on `validation` scenes) and `test-tasks` (the held-out task mixtures on `validation` scenes).
 */
export const EPISODE_SPLITS = ['train', 'validation', 'test-tasks'] as const;
/** An episode split name. */
export type EpisodeSplitName = (typeof EPISODE_SPLITS)[number];

/**
 * `count` episodes of an episode split, deterministic for `(split, seed)`.
 *
 * @example
 * ```ts
 * splitEpisodes('test-tasks', 10, { shots: 4 }).map((e) => e.task); // 'colour-shape' | 'size-shape'
 * ```
 */
export function splitEpisodes(split: EpisodeSplitName, count: number, options: { seed?: number; shots?: number } = {}): Episode[] {
  const id = EPISODE_SPLITS.indexOf(split);
  if (id < 0) throw new Error(`splitEpisodes: unknown split '${split}', expected one of ${EPISODE_SPLITS.join(', ')}`);
  if (!Number.isInteger(count) || count < 0) throw new Error(`splitEpisodes: expected a non-negative integer count, got ${count}`);
  const tasks = split === 'test-tasks' ? HELD_OUT_EPISODE_TASKS : EPISODE_TASKS;
  const sceneSplit: SplitName = split === 'train' ? 'train' : 'validation';
  const out: Episode[] = [];
  for (let i = 0; i < count; i++) {
    const seed = mixSeed(0xe9, id, options.seed ?? 0, i);
    out.push(sampleEpisode(seed, { task: tasks[seed % tasks.length], shots: options.shots, sceneSplit }));
  }
  return out;
}
