import { mixSeed, randomChoice, randomInt, shuffled, worldRandom } from './random';
import { BACKGROUND_KINDS, COLOURS, COLOUR_RGB, POSITIONS, SHAPES, SIZES, type BackgroundKind, type Colour, type Position, type Shape, type Size } from './vocabulary';

/** Side of every scene image in pixels. */
export const SCENE_SIZE = 224;

/** One drawn object: what it is (the words) and exactly how it is drawn (the pixels). */
export interface SceneObject {
  /** Colour name. */
  colour: Colour;
  /** Shape name. */
  shape: Shape;
  /** Size name. */
  size: Size;
  /** Grid row, 0 = top. */
  row: number;
  /** Grid column, 0 = left. */
  column: number;
  /** Centre x in pixels (the cell centre plus jitter). */
  x: number;
  /** Centre y in pixels. */
  y: number;
  /** Circumradius in pixels. */
  radius: number;
  /** Rotation in radians (0 for circles). */
  rotation: number;
  /** The drawn RGB (the colour's value plus jitter), 0–255. */
  rgb: [number, number, number];
}

/** How a scene's background is drawn. */
export interface Background {
  /** Kind of background. */
  kind: BackgroundKind;
  /** Base RGB, 0–255 (a grey with a small tint). */
  rgb: [number, number, number];
  /** Seed of the per-pixel noise. */
  noiseSeed: number;
  /** Per-pixel noise amplitude (± levels). */
  noise: number;
  /** Gradient direction (radians) or pattern angle. */
  angle: number;
  /** Gradient or pattern amplitude (± levels). */
  amplitude: number;
  /** Pattern period in pixels. */
  period: number;
}

/** A scene: a background and 1–3 objects in distinct grid cells. Fully determines the image. */
export interface Scene {
  /** The seed the scene was sampled from. */
  seed: number;
  /** Image width and height in pixels ({@link SCENE_SIZE}). */
  size: number;
  /** Background. */
  background: Background;
  /** Objects, in drawing order; no two share a grid cell or a colour–shape pair. */
  objects: SceneObject[];
}

/** Brightness range of the background grey. */
export type BackgroundTone = 'dark-to-mid' | 'light';

/** Options of {@link sampleScene}. */
export interface SceneOptions {
  /** Number of objects, or a list to choose from uniformly. Default: `[1, 2, 3]`. */
  objects?: number | readonly number[];
  /** Background brightness: grey 25–115 (`dark-to-mid`, default) or 150–230 (`light`). */
  tone?: BackgroundTone;
  /** Background kinds to choose from. Default: every kind. */
  backgrounds?: readonly BackgroundKind[];
  /**
   * Accepts or rejects a sampled scene (e.g. a split's rule); rejected scenes are redrawn from
   * the same seed's stream, up to 1000 times, then an `Error` is thrown.
   */
  accept?: (scene: Scene) => boolean;
  /** Limit each object's colour (e.g. only these colours). Default: every colour. */
  colours?: readonly Colour[];
  /** Limit each object's shape. Default: every shape. */
  shapes?: readonly Shape[];
}

/** The grid cell of an object: `row·3 + column`, an index into {@link POSITIONS}. */
export function cellOf(object: Pick<SceneObject, 'row' | 'column'>): number {
  return object.row * 3 + object.column;
}

/** The position name of an object's grid cell ("top left", …, "center"). */
export function positionOf(object: Pick<SceneObject, 'row' | 'column'>): Position {
  return POSITIONS[cellOf(object)]!;
}

const clampByte = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

function sampleBackground(rng: () => number, tone: BackgroundTone, kinds: readonly BackgroundKind[]): Background {
  const kind = randomChoice(rng, kinds);
  const grey = tone === 'light' ? randomInt(rng, 150, 230) : randomInt(rng, 25, 115);
  const rgb: [number, number, number] = [0, 1, 2].map(() => clampByte(grey + randomInt(rng, -8, 8))) as [number, number, number];
  return {
    kind,
    rgb,
    noiseSeed: Math.floor(rng() * 2 ** 32),
    noise: kind === 'noise' ? randomInt(rng, 6, 14) : kind === 'gradient' ? 4 : 0,
    angle: rng() * Math.PI * 2,
    amplitude: kind === 'gradient' ? randomInt(rng, 15, 30) : kind === 'checker' || kind === 'stripes' ? randomInt(rng, 5, 9) : 0,
    period: randomInt(rng, 8, 16),
  };
}

function sampleObject(rng: () => number, cell: number, colour: Colour, shape: Shape, size: Size, size0: number): SceneObject {
  const row = Math.floor(cell / 3);
  const column = cell % 3;
  const radius = size === 'small' ? 13 + rng() * 5 : 30 + rng() * 7;
  const cellSize = size0 / 3;
  const clamp = (v: number) => Math.max(radius + 1, Math.min(size0 - radius - 1, v));
  const x = clamp((column + 0.5) * cellSize + (rng() * 2 - 1) * 8);
  const y = clamp((row + 0.5) * cellSize + (rng() * 2 - 1) * 8);
  const rotation = shape === 'circle' ? 0 : ((rng() * 2 - 1) * 14 * Math.PI) / 180;
  const base = COLOUR_RGB[colour];
  const rgb = base.map((c) => clampByte(c + randomInt(rng, -15, 15))) as [number, number, number];
  return { colour, shape, size, row, column, x, y, radius, rotation, rgb };
}

/**
 * Samples a scene from a seed: the background, then 1–3 objects in distinct cells of the 3×3
 * grid (jittered ±8 px, rotated ±14°), with distinct colour–shape pairs. The same seed and
 * options always give the same scene, in Node and in the browser.
 *
 * @example
 * ```ts
 * const scene = sampleScene(7, { objects: 1 });
 * scene.objects[0]; // { colour: 'yellow', shape: 'square', size: 'small', row: 2, column: 1, x: 119.8, … }
 * ```
 */
export function sampleScene(seed: number, options: SceneOptions = {}): Scene {
  const counts = typeof options.objects === 'number' ? [options.objects] : (options.objects ?? [1, 2, 3]);
  for (const n of counts) {
    if (!Number.isInteger(n) || n < 1 || n > 3) throw new Error(`sampleScene: objects must be 1, 2 or 3, got ${n}`);
  }
  const kinds = options.backgrounds ?? BACKGROUND_KINDS;
  const colours = options.colours ?? COLOURS;
  const shapes = options.shapes ?? SHAPES;
  if (kinds.length === 0 || colours.length === 0 || shapes.length === 0) {
    throw new Error('sampleScene: backgrounds, colours and shapes must each be non-empty when given');
  }
  const rng = worldRandom(mixSeed(seed, 0x5ce7e));
  for (let attempt = 0; attempt < 1000; attempt++) {
    const background = sampleBackground(rng, options.tone ?? 'dark-to-mid', kinds);
    const n = randomChoice(rng, counts);
    const cells = shuffled(rng, [0, 1, 2, 3, 4, 5, 6, 7, 8]).slice(0, n);
    const objects: SceneObject[] = [];
    const pairs = new Set<string>();
    for (const cell of cells) {
      let colour: Colour;
      let shape: Shape;
      do {
        colour = randomChoice(rng, colours);
        shape = randomChoice(rng, shapes);
      } while (pairs.has(`${colour} ${shape}`) && pairs.size < colours.length * shapes.length);
      pairs.add(`${colour} ${shape}`);
      objects.push(sampleObject(rng, cell, colour, shape, randomChoice(rng, SIZES), SCENE_SIZE));
    }
    const scene: Scene = { seed, size: SCENE_SIZE, background, objects };
    if (!options.accept || options.accept(scene)) return scene;
  }
  throw new Error(`sampleScene: no scene for seed ${seed} passed 'accept' in 1000 draws (is the rule satisfiable with these options?)`);
}
