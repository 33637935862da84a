// The page: wiring and presentation only; the models, loaders and training are the @vlm packages.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '@vlm/core';
import type { ImageInput } from '@vlm/frozen-loaders';
import { Flamingo, smallFlamingoBridge } from '@vlm/pipelines';
import { canonicalCaption, renderScene, sceneQuestions, splitEpisodes, splitScenes, type Scene, type SceneImage } from '@vlm/shapeworld';
import { BACKEND_ORDER, backendDetails, memorySnapshot, startBackend } from './backends';
import { fetchTrainedBridge, loadFrozenParts, type FrozenParts } from './frozen-parts';
import { CAPTION_PROMPT, captionSet, disposeCaptionSet, freshFlamingo, questionPrompt, trainLive, type LiveStep } from './live-training';
import { drawImage, drawLossCurve, fitToCanvas } from './views';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const status = (s: string) => ($('status').textContent = s);

/** What the test and the debug panel read. */
interface PageState {
  ready: boolean;
  backend: string;
  error?: string;
  scene?: { caption: string; colour: string; shape: string };
  lastCaption?: string;
  lastAnswer?: string;
  training?: { losses: number[]; stepsPerSecond: number; seconds: number; tensorsBefore: number; tensorsAfter: number };
  memory: Array<{ after: string; numTensors: number; numBytes: number; backendBytes: number | null }>;
}
const state: PageState = { ready: false, backend: '', memory: [] };
(window as unknown as { vlmWeb: PageState }).vlmWeb = state;

let parts: FrozenParts;
let shipped: Flamingo | null = null;
let live: Flamingo;
let current: { image: ImageInput; scene?: Scene } | null = null;
let sceneIndex = Number(params.get('seed') ?? 0);
let busy = false;

function recordMemory(after: string): void {
  const m = memorySnapshot();
  state.memory.push({ after, ...m });
  const bytes = (n: number | null) => (n === null ? 'n/a' : `${(n / 2 ** 20).toFixed(2)} MiB`);
  $('memory').textContent = `tf.memory(): ${m.numTensors} tensors, ${bytes(m.numBytes)}; backend bytes: ${bytes(m.backendBytes)}`;
  const li = document.createElement('li');
  li.textContent = `${after}: ${m.numTensors} tensors, ${bytes(m.numBytes)}`;
  $('memory-log').append(li);
}

function model(): Flamingo {
  return ($<HTMLSelectElement>('bridge-select').value === 'live' || !shipped ? live : shipped);
}

/** Runs one user action with the buttons disabled; errors go to the status line. */
async function action(name: string, fn: () => Promise<void> | void): Promise<void> {
  if (busy) return;
  busy = true;
  for (const b of document.querySelectorAll('button')) b.disabled = true;
  try {
    await fn();
    recordMemory(name);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    status(`${name} failed: ${msg}`);
    console.error(e);
  } finally {
    busy = false;
    for (const b of document.querySelectorAll('button')) b.disabled = false;
  }
}

function showScene(index: number): void {
  const scene = splitScenes('validation', 1, { seed: 7, objects: 1, offset: index })[0]!;
  const image: SceneImage = renderScene(scene);
  drawImage($<HTMLCanvasElement>('image'), image);
  current = { image, scene };
  const o = scene.objects[0]!;
  state.scene = { caption: canonicalCaption(scene), colour: o.colour, shape: o.shape };
  $('truth').textContent = `world scene ${index}: truth "${canonicalCaption(scene)}"`;
  $('questions').replaceChildren(...sceneQuestions(scene).map((q) => Object.assign(document.createElement('option'), { value: q.question })));
  $('caption-out').textContent = '';
  $('answer-out').textContent = '';
}

async function showFile(file: File): Promise<void> {
  const bitmap = await createImageBitmap(file);
  const canvas = $<HTMLCanvasElement>('image');
  fitToCanvas(canvas, bitmap);
  bitmap.close();
  // a copy, so later drawing does not change the image the model sees
  const copy = document.createElement('canvas');
  copy.width = canvas.width;
  copy.height = canvas.height;
  copy.getContext('2d')!.drawImage(canvas, 0, 0);
  current = { image: copy };
  state.scene = undefined;
  $('truth').textContent = `your image: ${file.name} (${file.type || 'unknown type'})`;
  $('caption-out').textContent = '';
  $('answer-out').textContent = '';
}

/** Generates with no synchronous read-back (generateAsync), so it runs on WebGPU too. */
async function generate(images: ImageInput[], prompt: string, maxNewTokens = 8): Promise<string> {
  const out = await model().generateAsync({ images: [images], prompt, maxNewTokens });
  tf.dispose([out.sequences, out.stepLogits]); // the caller owns the returned tensors
  return out.text![0]!;
}

async function caption(): Promise<void> {
  if (!current) throw new Error('no image');
  status('captioning…');
  await tf.nextFrame();
  const t0 = performance.now();
  const text = `a ${await generate([current.image], CAPTION_PROMPT)}`;
  state.lastCaption = text;
  $('caption-out').textContent = text;
  status(`captioned in ${((performance.now() - t0) / 1000).toFixed(2)} s with the ${model() === live ? 'live' : 'shipped'} bridge`);
}

async function ask(): Promise<void> {
  if (!current) throw new Error('no image');
  const q = $<HTMLInputElement>('question').value.trim();
  if (!q) throw new Error('type a question');
  status('answering…');
  await tf.nextFrame();
  const text = await generate([current.image], questionPrompt(q), 4);
  state.lastAnswer = text;
  $('answer-out').textContent = `${q} → ${text}`;
  status('answered');
}

async function fewShot(): Promise<void> {
  const ep = splitEpisodes('train', 1, { seed: 1000 + sceneIndex++, shots: 2 })[0]!;
  const images = ep.images.map((s) => renderScene(s));
  status('few-shot…');
  await tf.nextFrame();
  const answer = await generate(images, ep.prompt, 4);
  const figures = images.map((img, i) => {
    const fig = document.createElement('figure');
    const c = document.createElement('canvas');
    drawImage(c, img);
    const last = i === images.length - 1;
    const cap = document.createElement('figcaption');
    cap.textContent = last ? `→ ${answer} (truth: ${ep.query.answer})` : ep.shots[i]!.answer;
    fig.append(c, cap);
    return fig;
  });
  $('few-shot-out').replaceChildren(...figures);
  status(`few-shot (${ep.task}): ${answer}`);
}

function showGates(gates: LiveStep['gates']): void {
  $('gates').querySelector('tbody')!.replaceChildren(
    ...gates.map((g) => {
      const tr = document.createElement('tr');
      tr.innerHTML = `<td>${g.layer}</td><td>${g.attn.toFixed(4)}</td><td>${g.ff.toFixed(4)}</td>`;
      return tr;
    }),
  );
}

async function train(): Promise<void> {
  const steps = Number($<HTMLInputElement>('steps').value);
  const batchSize = Number($<HTMLInputElement>('batch').value);
  const tensorsBefore = tf.memory().numTensors;
  status('encoding training scenes with the frozen encoder…');
  const set = await captionSet(parts.encoder, parts.tokenizer, parts.padId, Math.max(16, batchSize * 4), 11);
  const losses: number[] = [];
  try {
    status(`training ${steps} steps…`);
    const result = await trainLive(live, set, {
      steps,
      batchSize,
      lr: 1e-3,
      seed: 0,
      onStep: async (s) => {
        losses.push(s.loss);
        drawLossCurve($('loss-curve') as unknown as SVGSVGElement, losses, s.totalSteps);
        showGates(s.gates);
        $('train-status').textContent = `step ${s.step}/${s.totalSteps}  loss ${s.loss.toFixed(3)}  ${s.stepsPerSecond.toFixed(2)} steps/s`;
        await tf.nextFrame();
      },
    });
    state.training = { ...result, tensorsBefore, tensorsAfter: 0 };
  } finally {
    disposeCaptionSet(set);
  }
  state.training.tensorsAfter = tf.memory().numTensors;
  $<HTMLSelectElement>('bridge-select').value = 'live';
  status(`trained ${steps} steps at ${state.training.stepsPerSecond.toFixed(2)} steps/s; captioning with the live bridge…`);
  if (current) await caption();
}

/** A fresh bridge's gates: 0 (the LM starts blind), shown without reading them back from the backend. */
function freshGates(): LiveStep['gates'] {
  const every = live.bridge.crossAttnEveryNLayers;
  return Array.from({ length: parts.lm.info.numLayers }, (_, layer) => ({ layer, attn: 0, ff: 0 })).filter((g) => (g.layer + 1) % every === 0);
}

function resetLive(): void {
  live.dispose();
  live = freshFlamingo({ encoder: parts.encoder, lm: parts.lm, tokenizer: parts.tokenizer, bridge: live.bridge, seed: 0 });
  showGates(freshGates());
  drawLossCurve($('loss-curve') as unknown as SVGSVGElement, [], 1);
  $('train-status').textContent = 'live bridge reset (fresh weights, gates at 0)';
}

async function main(): Promise<void> {
  const wanted = params.get('backend') as BackendName | null;
  if (wanted && !BACKEND_ORDER.includes(wanted)) throw new Error(`?backend=${wanted}: expected one of ${BACKEND_ORDER.join(', ')}`);
  const backend = await startBackend(wanted ?? undefined, { wasmThreads: params.get('threads') !== '0' });
  state.backend = backend;
  $('backend-badge').textContent = backendDetails();
  $<HTMLSelectElement>('backend-select').value = backend;
  $('isolation').textContent = crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated';
  $<HTMLSelectElement>('backend-select').addEventListener('change', (e) => {
    const u = new URL(location.href);
    u.searchParams.set('backend', (e.target as HTMLSelectElement).value);
    location.href = u.toString();
  });

  parts = await loadFrozenParts(() => splitScenes('train', 96, { seed: 3, objects: 1 }).map((sc) => renderScene(sc)), status);
  const saved = await fetchTrainedBridge();
  const bridgeConfig = saved?.config ?? smallFlamingoBridge({ tokenWidth: parts.encoder.tokenWidth, mediaTokenId: parts.imageId, eocTokenId: parts.eocId });
  if (saved) {
    shipped = new Flamingo({ vision: parts.encoder, lm: parts.lm, bridge: saved.config, tokenizer: parts.tokenizer });
    shipped.loadBridge(saved);
  } else {
    $<HTMLSelectElement>('bridge-select').value = 'live';
    ($<HTMLSelectElement>('bridge-select').options[0]!).disabled = true;
  }
  live = freshFlamingo({ encoder: parts.encoder, lm: parts.lm, tokenizer: parts.tokenizer, bridge: bridgeConfig, seed: 0 });
  // a fresh bridge's gates are 0 (the LM starts blind); no read-back needed to show that
  showGates(freshGates());
  $('parts').textContent = `encoder: ${parts.encoder.name} (${parts.encoder.numTokens} tokens × ${parts.encoder.tokenWidth}; ${parts.standardization}); LM: the world's GPT-2, ${parts.lm.info.numLayers} layers, width ${parts.lm.info.hiddenSize}; shipped bridge: ${saved ? `${(saved.weights.length / 1024).toFixed(0)} KiB` : 'none (run npm run demo, then copy it, see the README)'}`;

  showScene(sceneIndex);
  $('new-scene').addEventListener('click', () => action('new scene', () => showScene(++sceneIndex)));
  $('caption').addEventListener('click', () => action('caption', caption));
  $('ask').addEventListener('click', () => action('ask', ask));
  $('few-shot').addEventListener('click', () => action('few-shot', fewShot));
  $('train').addEventListener('click', () => action('train', train));
  $('reset').addEventListener('click', () => action('reset', resetLive));
  $('file').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void action('pick image', () => showFile(f));
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) void action('drop image', () => showFile(f));
  });
  for (const b of document.querySelectorAll('button')) b.disabled = false;
  recordMemory('ready');
  status(`ready on ${backend}`);
  state.ready = true;
}

main().catch((e) => {
  state.error = e instanceof Error ? e.message : String(e);
  status(`failed to start: ${state.error}`);
  console.error(e);
});
