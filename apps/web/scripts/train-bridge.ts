// Trains the Flamingo bridge the page ships (public/bridges/) in Node, with the page's own live-training
// recipe (src/live-training.ts) for longer, and writes it with the encoder's standardization:
// flamingo.safetensors + flamingo.json (@vlm/pipelines' writeBridge) and vision-standardization.safetensors.
//   pnpm --filter @vlm/web run train-bridge [-- --steps 400 --mix-steps 300 --questions 2 --scenes 256 --batch 8 --out public/bridges]
// (400 + 300 steps: 200 s on this project's 2-core machine, wasm; validation captions colour 98%, shape 92%, VQA 75%)
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, selectBackend, writeSafetensors } from '@vlm/core';
import { NSFWJS_MOBILENET_V2_COLOUR_CUT, StandardizedVisionEncoder, visionTokenStatistics, loadDecoderLM, loadNsfwjsMobileNetV2Encoder, loadTokenizer, preprocessImages } from '@vlm/frozen-loaders';
import { smallFlamingoBridge } from '@vlm/pipelines';
import { writeBridge } from '@vlm/pipelines/node';
import { canonicalCaption, renderScene, sceneQuestions, splitScenes } from '@vlm/shapeworld';
import { readShapeWorldLM } from '@vlm/shapeworld/node';
import { CAPTION_PROMPT, captionSet, questionPrompt, disposeCaptionSet, freshFlamingo, trainLive } from '../src/live-training';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const steps = Number(opt('steps', '400'));
const mixSteps = Number(opt('mix-steps', '300'));
const scenes = Number(opt('scenes', '256'));
const batchSize = Number(opt('batch', '8'));
const questions = Number(opt('questions', '2'));
const out = opt('out', 'public/bridges');

await selectBackend(['wasm', 'cpu']);
const raw = await loadNsfwjsMobileNetV2Encoder(NSFWJS_MOBILENET_V2_COLOUR_CUT);
// statistics of the training images' tokens
const statImages = splitScenes('train', 128, { seed: 3, objects: 1 }).map((s) => renderScene(s));
const chunks: tf.Tensor3D[] = [];
for (let i = 0; i < statImages.length; i += 16) chunks.push(tf.tidy(() => raw.encode(preprocessImages(statImages.slice(i, i + 16), raw.preprocessing))));
const statTokens = tf.concat(chunks);
const { mean, std } = visionTokenStatistics(statTokens);
statTokens.dispose();
tf.dispose(chunks);
const encoder = new StandardizedVisionEncoder(raw, { mean, std });
const files = readShapeWorldLM();
const lm = await loadDecoderLM({ config: files.config, weights: files.weights });
const tokenizer = loadTokenizer(files.tokenizer, { tokenizerConfig: files.tokenizerConfig });
const id = (t: string) => tokenizer.tokenToId(t)!;
const flamingo = freshFlamingo({ encoder, lm, tokenizer, bridge: smallFlamingoBridge({ tokenWidth: encoder.tokenWidth, mediaTokenId: id('<image>'), eocTokenId: id('<|endofchunk|>') }), seed: 0 });
// As the demo: image–caption pairs first (the gates open and the bridge learns to see), then
// captions mixed with questions (trained from the start, the mixture does not learn to see).
const t0 = performance.now();
const losses: number[] = [];
const phases = [
  { name: 'captions', steps, questions: 0 },
  { name: 'captions + questions', steps: mixSteps, questions },
].filter((p) => p.steps > 0);
for (const phase of phases) {
  const set = await captionSet(encoder, tokenizer, id('<pad>'), scenes, 11, phase.questions);
  const r = await trainLive(flamingo, set, {
    steps: phase.steps,
    batchSize,
    lr: 1e-3,
    seed: 0,
    onStep: (s) => {
      if (s.step % 50 === 0 || s.step === phase.steps) console.error(`${phase.name}: step ${s.step}/${phase.steps} loss ${s.loss.toFixed(3)} ${s.stepsPerSecond.toFixed(2)} steps/s gates ${s.gates.map((g) => `${g.attn.toFixed(2)}/${g.ff.toFixed(2)}`).join(' ')}`);
    },
  });
  losses.push(...r.losses);
  disposeCaptionSet(set);
}
const r = { losses };
console.error(`trained ${phases.map((p) => p.steps).join(' + ')} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
// held-out check on the page's scene stream
let colour = 0;
let shape = 0;
const evalScenes = splitScenes('validation', 48, { seed: 7, objects: 1 });
for (const s of evalScenes) {
  const g = flamingo.generate({ images: [[renderScene(s)]], prompt: CAPTION_PROMPT, maxNewTokens: 8 });
  tf.dispose([g.sequences, g.stepLogits]);
  const o = s.objects[0]!;
  colour += Number(g.text![0]!.includes(o.colour));
  shape += Number(g.text![0]!.includes(o.shape));
  if (evalScenes.indexOf(s) < 6) console.error(`  ${canonicalCaption(s)} → a ${g.text![0]}`);
}
let vqa = 0;
for (const [k, s] of evalScenes.entries()) {
  const qs = sceneQuestions(s);
  const q = qs[k % qs.length]!;
  const g = flamingo.generate({ images: [[renderScene(s)]], prompt: questionPrompt(q.question), maxNewTokens: 4 });
  tf.dispose([g.sequences, g.stepLogits]);
  vqa += Number(g.text![0]!.trim() === q.answer);
}
console.error(`validation VQA: ${((100 * vqa) / evalScenes.length).toFixed(0)}% exact answers`);
console.error(`validation (${evalScenes.length} scenes): colour ${((100 * colour) / evalScenes.length).toFixed(0)}%, shape ${((100 * shape) / evalScenes.length).toFixed(0)}%`);
mkdirSync(out, { recursive: true });
// F16 on disk (half the bytes: the page fetches it); read back as float32 by loadBridge
const saved = flamingo.saveBridge();
const weights = readSafetensors(saved.weights, { source: 'the trained bridge' });
await writeBridge(out, { ...saved, weights: writeSafetensors(weights.tensors, weights.metadata, { float32As: 'F16' }) });
tf.dispose(Object.values(weights.tensors));
writeFileSync(join(out, 'vision-standardization.safetensors'), writeSafetensors({ mean, std }));
console.error(`wrote ${out}/flamingo.safetensors, flamingo.json, vision-standardization.safetensors; loss ${r.losses[0]!.toFixed(3)} → ${r.losses.at(-1)!.toFixed(3)}`);
