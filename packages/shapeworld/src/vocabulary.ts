/** The colours of the world, in a fixed order (indices are class ids for probes). */
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white'] as const;
/** A colour name. */
export type Colour = (typeof COLOURS)[number];

/** The RGB value each colour is drawn with, before a ±15 per-channel jitter. */
export const COLOUR_RGB: Readonly<Record<Colour, readonly [number, number, number]>> = {
  red: [215, 40, 40],
  green: [40, 175, 60],
  blue: [45, 85, 230],
  yellow: [235, 215, 45],
  purple: [150, 60, 200],
  orange: [245, 140, 30],
  white: [240, 240, 240],
};

/** The shapes of the world, in a fixed order. */
export const SHAPES = ['circle', 'square', 'triangle', 'star', 'cross'] as const;
/** A shape name. */
export type Shape = (typeof SHAPES)[number];

/** The two sizes: small (radius 13–18 px at 224×224) and large (radius 30–37 px). */
export const SIZES = ['small', 'large'] as const;
/** A size name. */
export type Size = (typeof SIZES)[number];

/** Rows of the 3×3 placement grid, top to bottom. */
export const ROWS = ['top', 'middle', 'bottom'] as const;
/** Columns of the 3×3 placement grid, left to right. */
export const COLUMNS = ['left', 'center', 'right'] as const;

/**
 * The nine grid cells' names, row-major (cell = row·3 + column): what position answers say.
 * The middle row drops "middle" and the center column drops "center" ("left", "top"); the
 * middle cell is "center".
 */
export const POSITIONS = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'] as const;
/** A position name (one of {@link POSITIONS}). */
export type Position = (typeof POSITIONS)[number];

/**
 * Background kinds: plain grey, per-pixel noise, a linear gradient with a little noise, and two
 * faint patterns (a checkerboard and diagonal stripes; stripes are held out of training, see
 * {@link HELD_OUT_BACKGROUND}).
 */
export const BACKGROUND_KINDS = ['plain', 'noise', 'gradient', 'checker', 'stripes'] as const;
/** A background kind. */
export type BackgroundKind = (typeof BACKGROUND_KINDS)[number];

/** Number words used by captions and answers, indexed by the number. */
export const NUMBER_WORDS = ['zero', 'one', 'two', 'three'] as const;

/** The background kind never seen in training (the `test-background` split uses only it). */
export const HELD_OUT_BACKGROUND: BackgroundKind = 'stripes';
