import { randomChoice } from './random';
import { positionOf, type Scene, type SceneObject } from './scene';
import { NUMBER_WORDS, type Position } from './vocabulary';

/** "a" or "an", as English wants before `word`. */
export function article(word: string): 'a' | 'an' {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** Where an object is, as a phrase: "on the left", "at the top", "in the top left corner", "in the center". */
export function positionPhrase(position: Position): string {
  if (position === 'center') return 'in the center';
  if (position === 'left' || position === 'right') return `on the ${position}`;
  if (position === 'top' || position === 'bottom') return `at the ${position}`;
  return `in the ${position} corner`;
}

/** The objects in reading order: top row first, left to right. */
export function readingOrder(scene: Scene): SceneObject[] {
  return [...scene.objects].sort((a, b) => a.row - b.row || a.column - b.column);
}

const np = (o: SceneObject, withSize: boolean) => {
  const words = withSize ? `${o.size} ${o.colour} ${o.shape}` : `${o.colour} ${o.shape}`;
  return `${article(words)} ${words}`;
};
const where = (o: SceneObject) => positionPhrase(positionOf(o));

/** How `a` (earlier in reading order) relates to `b`: "above" when in a higher row, else "to the left of". */
function relation(a: SceneObject, b: SceneObject): { forward: string; backward: string } {
  return a.row < b.row ? { forward: 'above', backward: 'below' } : { forward: 'to the left of', backward: 'to the right of' };
}

function listing(items: string[]): string {
  return items.length === 1 ? items[0]! : `${items.slice(0, -1).join(' , ')} and ${items[items.length - 1]}`;
}

/**
 * Every caption template, rendered for `scene` (varied templated English; all true of the
 * scene). The first is the canonical caption: "a small red circle on the left", "two shapes: a
 * large blue square above a small yellow star", "three shapes: a … , a … and a …".
 *
 * @example
 * ```ts
 * sceneCaptions(scene); // ['a small red circle on the left', 'there is a small red circle on the left', …]
 * ```
 */
export function sceneCaptions(scene: Scene): string[] {
  const objs = readingOrder(scene);
  if (objs.length === 0) throw new Error('sceneCaptions: expected a scene with 1–3 objects, got none');
  if (objs.length === 1) {
    const o = objs[0]!;
    return [
      `${np(o, true)} ${where(o)}`,
      `there is ${np(o, true)} ${where(o)}`,
      `${np(o, false)} ${where(o)}`,
      `${where(o)} there is ${np(o, true)}`,
      `one ${o.size} ${o.colour} ${o.shape}`,
      `the picture shows ${np(o, true)} ${where(o)}`,
      `${article(o.size)} ${o.size} ${o.shape} in ${o.colour} ${where(o)}`,
      `an image with ${np(o, true)} ${where(o)}`,
    ];
  }
  const count = NUMBER_WORDS[objs.length]!;
  if (objs.length === 2) {
    const [a, b] = objs as [SceneObject, SceneObject];
    const rel = relation(a, b);
    return [
      `two shapes: ${np(a, true)} ${rel.forward} ${np(b, true)}`,
      `${np(a, false)} ${where(a)} and ${np(b, false)} ${where(b)}`,
      `there are two shapes , ${np(a, false)} and ${np(b, false)}`,
      `two shapes: ${np(a, false)} ${rel.forward} ${np(b, false)}`,
      `${np(b, true)} ${rel.backward} ${np(a, true)}`,
      `the picture shows ${np(a, true)} ${where(a)} and ${np(b, true)} ${where(b)}`,
    ];
  }
  return [
    `${count} shapes: ${listing(objs.map((o) => `${np(o, true)} ${where(o)}`))}`,
    `there are ${count} shapes: ${listing(objs.map((o) => np(o, false)))}`,
    `${listing(objs.map((o) => np(o, true)))}`,
    `the picture shows ${count} shapes: ${listing(objs.map((o) => `${np(o, false)} ${where(o)}`))}`,
  ];
}

/** The canonical caption (the first of {@link sceneCaptions}): the one to train a captioner on. */
export function canonicalCaption(scene: Scene): string {
  return sceneCaptions(scene)[0]!;
}

/** One caption template, chosen with `rng` (a seeded generator such as `worldRandom`). */
export function randomCaption(scene: Scene, rng: () => number): string {
  return randomChoice(rng, sceneCaptions(scene));
}
