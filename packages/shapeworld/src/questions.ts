import { article } from './captions';
import { positionOf, type Scene, type SceneObject } from './scene';
import { COLOURS, NUMBER_WORDS, SHAPES, type Colour, type Shape } from './vocabulary';

/** What a question asks about. */
export const QUESTION_KINDS = ['colour', 'shape', 'size', 'count', 'position', 'existence', 'yes-no'] as const;
/** A question kind. */
export type QuestionKind = (typeof QUESTION_KINDS)[number];

/** A question about a scene and its answer (one or two words). */
export interface QAPair {
  /** What the question asks about. */
  kind: QuestionKind;
  /** The question, e.g. "what colour is the star?". */
  question: string;
  /** The answer, e.g. "red", "two", "top left", "yes". */
  answer: string;
}

/** How to name one object so that no other object in the scene fits: its shape if unique, else colour + shape. */
function reference(scene: Scene, o: SceneObject): string {
  const sameShape = scene.objects.filter((p) => p.shape === o.shape).length;
  return sameShape === 1 ? o.shape : `${o.colour} ${o.shape}`;
}

/**
 * Every question this world asks about `scene`, with answers: the colour, shape, size and
 * position of each object (named unambiguously), how many shapes (and how many of a colour),
 * whether a colour–shape pair is there (one present, one absent: `existence`), and yes/no
 * checks of an attribute (one true, one false: `yes-no`). Deterministic for a scene.
 *
 * @example
 * ```ts
 * sceneQuestions(scene).find((q) => q.kind === 'colour'); // { kind: 'colour', question: 'what colour is the star?', answer: 'red' }
 * ```
 */
export function sceneQuestions(scene: Scene): QAPair[] {
  if (scene.objects.length === 0) throw new Error('sceneQuestions: expected a scene with 1–3 objects, got none');
  const out: QAPair[] = [];
  const seed = scene.seed >>> 0;
  for (const [i, o] of scene.objects.entries()) {
    const ref = reference(scene, o);
    out.push({ kind: 'colour', question: `what colour is the ${ref}?`, answer: o.colour });
    const byColour = scene.objects.filter((p) => p.colour === o.colour).length === 1;
    out.push({ kind: 'shape', question: byColour ? `what shape is the ${o.colour} one?` : `what shape is ${positionOf(o) === 'center' ? 'in the center' : `at the ${positionOf(o)}`}?`, answer: o.shape });
    out.push({ kind: 'size', question: `what size is the ${ref}?`, answer: o.size });
    out.push({ kind: 'position', question: `where is the ${ref}?`, answer: positionOf(o) });
    // yes/no: one true and one false statement about this object, alternating the attribute.
    const wrongColour = COLOURS[(COLOURS.indexOf(o.colour) + 1 + ((seed + i) % (COLOURS.length - 1))) % COLOURS.length]!;
    const otherSize = o.size === 'small' ? 'large' : 'small';
    if ((seed + i) % 2 === 0) {
      out.push({ kind: 'yes-no', question: `is the ${ref} ${o.colour}?`, answer: 'yes' });
      out.push({ kind: 'yes-no', question: `is the ${ref} ${wrongColour}?`, answer: 'no' });
    } else {
      out.push({ kind: 'yes-no', question: `is the ${ref} ${o.size}?`, answer: 'yes' });
      out.push({ kind: 'yes-no', question: `is the ${ref} ${otherSize}?`, answer: 'no' });
    }
  }
  const n = scene.objects.length;
  out.push({ kind: 'count', question: 'how many shapes are there?', answer: NUMBER_WORDS[n]! });
  const colour = COLOURS[seed % COLOURS.length]!;
  out.push({ kind: 'count', question: `how many ${colour} shapes are there?`, answer: NUMBER_WORDS[scene.objects.filter((o) => o.colour === colour).length]! });
  const present = scene.objects[seed % n]!;
  out.push({ kind: 'existence', question: `is there ${article(present.colour)} ${present.colour} ${present.shape}?`, answer: 'yes' });
  const absent = absentPair(scene, seed);
  out.push({ kind: 'existence', question: `is there ${article(absent.colour)} ${absent.colour} ${absent.shape}?`, answer: 'no' });
  return out;
}

function absentPair(scene: Scene, seed: number): { colour: Colour; shape: Shape } {
  const total = COLOURS.length * SHAPES.length;
  for (let k = 0; k < total; k++) {
    const j = (seed + k * 7) % total;
    const colour = COLOURS[Math.floor(j / SHAPES.length)]!;
    const shape = SHAPES[j % SHAPES.length]!;
    if (!scene.objects.some((o) => o.colour === colour && o.shape === shape)) return { colour, shape };
  }
  throw new Error('sceneQuestions: every colour–shape pair is in the scene (impossible with at most 3 objects)');
}
