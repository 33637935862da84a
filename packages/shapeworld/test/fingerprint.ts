// A fingerprint of the world's output (pixels and texts of a few scenes, episodes and documents),
// computed the same way in Node and in the browser bundle.
import { decodePng, encodePng, renderScene, sampleEpisode, sampleScene, sceneCaptions, sceneQuestions, worldText } from '../src/index';

function fnv1a(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return h >>> 0;
}

/** `"<pixel hash> <text hash>"` over scenes 0–5 (one light), episodes 0–2 and 20 documents. */
export function worldFingerprint(): string {
  let pixels = 0x811c9dc5;
  const texts: string[] = [];
  for (let seed = 0; seed < 6; seed++) {
    const scene = sampleScene(seed, { tone: seed === 5 ? 'light' : 'dark-to-mid' });
    pixels = fnv1a(renderScene(scene).data, pixels);
    texts.push(...sceneCaptions(scene), ...sceneQuestions(scene).map((q) => `${q.question} ${q.answer}`));
  }
  for (let seed = 0; seed < 3; seed++) texts.push(sampleEpisode(seed).text);
  texts.push(...worldText('train', 20).map((d) => d.text));
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  return `${hex(pixels)} ${hex(fnv1a(new TextEncoder().encode(texts.join('\n'))))}`;
}

/** Hash of the PNG bytes of scene 0 and of the pixels decoded back from them. */
export function pngFingerprint(): string {
  const png = encodePng(renderScene(sampleScene(0)));
  return `${fnv1a(png).toString(16)} ${fnv1a(decodePng(png).data).toString(16)}`;
}
