import { mixSeed } from './random';
import { positionOf, sampleScene, type BackgroundTone, type Scene, type SceneObject } from './scene';
import { BACKGROUND_KINDS, HELD_OUT_BACKGROUND, type Colour, type Position, type Shape } from './vocabulary';

/**
 * The scene splits:
 * - `train`, `validation`: the same distribution (different seed streams); no held-out
 *   colour–shape pair, no held-out placement, never the held-out background.
 * - `test-compositional`: at least one object is a held-out colour–shape pair
 *   ({@link HELD_OUT_PAIRS}: each colour and each shape is seen in training, never together).
 * - `test-placement`: at least one object is a shape at a held-out grid cell ({@link HELD_OUT_PLACEMENTS}).
 * - `test-background`: the held-out background kind ({@link HELD_OUT_BACKGROUND}, faint stripes).
 *
 * Each test split changes one factor and keeps the others as in training, so the splits are
 * disjoint by content (see {@link sceneSplit}).
 */
export const SPLITS = ['train', 'validation', 'test-compositional', 'test-placement', 'test-background'] as const;
/** A scene split name. */
export type SplitName = (typeof SPLITS)[number];

/** A colour–shape pair. */
export interface ColourShapePair {
  /** The colour. */
  readonly colour: Colour;
  /** The shape. */
  readonly shape: Shape;
}

/** A shape at a grid cell. */
export interface ShapePlacement {
  /** The shape. */
  readonly shape: Shape;
  /** The grid cell's name. */
  readonly position: Position;
}

/** Colour–shape pairs that never appear in `train`/`validation` (one per colour; every shape at least once). */
export const HELD_OUT_PAIRS: readonly ColourShapePair[] = [
  { colour: 'red', shape: 'star' },
  { colour: 'green', shape: 'cross' },
  { colour: 'blue', shape: 'triangle' },
  { colour: 'yellow', shape: 'square' },
  { colour: 'purple', shape: 'circle' },
  { colour: 'orange', shape: 'cross' },
  { colour: 'white', shape: 'star' },
];

/** Shapes at grid cells that never appear in `train`/`validation` (each shape and each cell is seen elsewhere). */
export const HELD_OUT_PLACEMENTS: readonly ShapePlacement[] = [
  { shape: 'circle', position: 'top left' },
  { shape: 'square', position: 'top right' },
  { shape: 'triangle', position: 'bottom left' },
  { shape: 'star', position: 'bottom right' },
  { shape: 'cross', position: 'center' },
];

/** Whether an object is a held-out colour–shape pair. */
export function isHeldOutPair(o: Pick<SceneObject, 'colour' | 'shape'>): boolean {
  return HELD_OUT_PAIRS.some((p) => p.colour === o.colour && p.shape === o.shape);
}

/** Whether an object is a shape at a held-out grid cell. */
export function isHeldOutPlacement(o: Pick<SceneObject, 'shape' | 'row' | 'column'>): boolean {
  const position = positionOf(o);
  return HELD_OUT_PLACEMENTS.some((p) => p.shape === o.shape && p.position === position);
}

/**
 * Which split's rule a scene satisfies by its content: `'train'` (also what `validation` scenes
 * are), one of the test splits, or `undefined` when it mixes held-out factors (no split has it).
 *
 * @example
 * ```ts
 * sceneSplit(splitScenes('test-placement', 1)[0]); // 'test-placement'
 * ```
 */
export function sceneSplit(scene: Scene): Exclude<SplitName, 'validation'> | undefined {
  const pair = scene.objects.some(isHeldOutPair);
  const place = scene.objects.some(isHeldOutPlacement);
  const bg = scene.background.kind === HELD_OUT_BACKGROUND;
  const held = Number(pair) + Number(place) + Number(bg);
  if (held > 1) return undefined;
  return pair ? 'test-compositional' : place ? 'test-placement' : bg ? 'test-background' : 'train';
}

/** Options of {@link splitScenes}. */
export interface SplitScenesOptions {
  /** Seed of the split's stream (scene `i` has seed `mixSeed(split, seed, i)`). Default: 0. */
  seed?: number;
  /** Number of objects, or a list to choose from. Default: `[1, 2, 3]`. */
  objects?: number | readonly number[];
  /** Background tone. Default: `dark-to-mid`. */
  tone?: BackgroundTone;
  /** Index of the first scene (for paging through a split). Default: 0. */
  offset?: number;
}

/** The seed of scene `index` of a split's stream. */
export function splitSceneSeed(split: SplitName, seed: number, index: number): number {
  const id = SPLITS.indexOf(split);
  if (id < 0) throw new Error(`splitSceneSeed: unknown split '${split}', expected one of ${SPLITS.join(', ')}`);
  return mixSeed(0x5b117, id, seed, index);
}

/**
 * `count` scenes of a split (see {@link SPLITS}), deterministic for `(split, seed, offset)`.
 *
 * @example
 * ```ts
 * const train = splitScenes('train', 1000, { objects: 1 });
 * const heldOut = splitScenes('test-compositional', 200);
 * ```
 */
export function splitScenes(split: SplitName, count: number, options: SplitScenesOptions = {}): Scene[] {
  if (!Number.isInteger(count) || count < 0) throw new Error(`splitScenes: expected a non-negative integer count, got ${count}`);
  const want = split === 'validation' ? 'train' : split;
  const backgrounds = split === 'test-background' ? [HELD_OUT_BACKGROUND] : BACKGROUND_KINDS.filter((k) => k !== HELD_OUT_BACKGROUND);
  const out: Scene[] = [];
  const offset = options.offset ?? 0;
  for (let i = 0; i < count; i++) {
    out.push(
      sampleScene(splitSceneSeed(split, options.seed ?? 0, offset + i), {
        objects: options.objects,
        tone: options.tone,
        backgrounds,
        accept: (s) => sceneSplit(s) === want,
      }),
    );
  }
  return out;
}
