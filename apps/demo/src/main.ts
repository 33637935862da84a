/**
 * The @vlm demo: a frozen vision encoder (the pretrained MobileNetV2 embedded in nsfwjs) and a
 * frozen language model pretrained on the embedded world's text, connected by bridges that are
 * the only things trained — the Flamingo way (Perceiver Resampler + gated cross-attention), the
 * BLIP-2 way (Q-Former, three stages) and the LLaVA way (MLP projector) — on @vlm/shapeworld
 * scenes with @vlm/train; then the design's three experiments (gate analysis, Q-Former probe,
 * few-shot) into results.json and a self-contained report.html. See `USAGE` for the commands.
 *
 * Everything is embedded, nothing is downloaded. Matrix products run on @vlm/native-matmul's
 * kernels where its addon was built at install (`--no-native`: TF.js's stock kernels).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { selectBackend } from '@vlm/core';
import { decodeImage } from '@vlm/frozen-loaders/node';
import { enableNativeMatMul, nativeMatMulAvailable } from '@vlm/native-matmul';
import { Blip2, Flamingo, probeQueries, type Blip2BridgeConfig, type FlamingoBridgeConfig } from '@vlm/pipelines';
import { loadBlip2, loadOpenFlamingo, readBridge } from '@vlm/pipelines/node';
import { preprocessImages } from '@vlm/frozen-loaders';
import { parseArgs, USAGE, type DemoArgs } from './cli-args';
import { loadFrozenModels, readStandardization, standardizeEncoder } from './frozen-models';
import { runAll } from './run';
import { CAPTION_PROMPT } from './world-data';
import { heatmap, groupedBars } from './svg-plots';

const log = (s = '') => process.stdout.write(`${s}\n`);
// stdout carries the results (`caption`/`ask`: one JSON line per image); what libraries print
// through console (nsfwjs announces its model) goes to stderr.
console.log = console.info = (...a: unknown[]) => console.error(...a);
const info = (s = '') => process.stderr.write(`${s}\n`);
// `npm run demo -- ...` runs in apps/demo: relative paths are the caller's.
const here = (p: string) => resolve(process.env.INIT_CWD ?? process.cwd(), p);

async function readImages(paths: readonly string[]) {
  if (paths.length === 0) throw new Error('expected at least one image file (PNG or JPEG)');
  return Promise.all(paths.map(async (p) => ({ path: p, image: await decodeImage(new Uint8Array(readFileSync(here(p)))) })));
}

/** The trained bridges of a run folder, rebuilt around the default frozen parts; trains them first when there are none. */
async function trainedModels(args: DemoArgs) {
  const dir = here(args.from ?? args.out);
  if (!existsSync(join(dir, 'flamingo.safetensors')) || !existsSync(join(dir, 'blip2.safetensors'))) {
    info(`no trained bridges in ${dir}: training the default bridges first (npm run demo${args.quick ? ' -- --quick' : ''}), then answering`);
    await runAll({ ...args, out: dir }, info);
  }
  const frozen = await loadFrozenModels();
  const stats = readStandardization(dir);
  standardizeEncoder(frozen, stats);
  tf.dispose([stats.mean, stats.std]);
  if (args.bridge === 'flamingo') {
    const saved = await readBridge(dir, 'flamingo');
    const model = new Flamingo({ vision: frozen.encoder, lm: frozen.lm, bridge: saved.config as FlamingoBridgeConfig, tokenizer: frozen.tokenizer, ownParts: true });
    model.loadBridge(saved as never);
    return { model, frozen };
  }
  const saved = await readBridge(dir, 'blip2');
  const cfg = saved.config as Blip2BridgeConfig;
  const model = new Blip2({ vision: frozen.encoder, lm: frozen.lm, qformer: cfg.qformer, stage1: cfg.stage1, imageTokenId: cfg.imageTokenId, framesPerImage: cfg.framesPerImage, splitQueries: cfg.splitQueries, tokenizer: frozen.tokenizer, ownParts: true });
  model.loadBridge(saved);
  return { model, frozen };
}

async function answerEach(args: DemoArgs, prompt: string, field: 'caption' | 'answer') {
  const images = await readImages(args.positional);
  const { model, frozen } = await trainedModels(args);
  for (const { path, image } of images) {
    const r =
      model instanceof Flamingo
        ? model.generate({ images: [[image]], prompt, maxNewTokens: 12 })
        : model.generate({ images: [[image]], prompt, maxNewTokens: 12, stopTokenIds: [frozen.eocId] });
    if ('stepLogits' in r && r.stepLogits) r.stepLogits.dispose();
    if ('sequences' in r && r.sequences instanceof tf.Tensor) r.sequences.dispose();
    log(JSON.stringify(field === 'caption' ? { image: path, caption: `a ${r.text![0]}` } : { image: path, question: args.question, answer: r.text![0] }));
  }
  model.dispose();
}

async function probeCommand(args: DemoArgs) {
  const source = args.from ? undefined : args.positional.shift();
  if (!source && !args.from) throw new Error('probe: expected HF_DIR or --from DIR, then images');
  const images = await readImages(args.positional);
  let blip2: Blip2;
  if (args.from) blip2 = (await trainedModels({ ...args, bridge: 'blip2' })).model as Blip2;
  else blip2 = await loadBlip2(here(source!));
  const pixels = preprocessImages(images.map((i) => i.image), blip2.vision.preprocessing);
  const out = tf.tidy(() => blip2.queryOutputs(blip2.encodeImages(pixels)));
  pixels.dispose();
  const probe = probeQueries(out, {});
  out.dispose();
  const dir = here(args.out);
  mkdirSync(dir, { recursive: true });
  const result = { source: args.from ? `--from ${args.from}` : source, images: images.map((i) => i.path), query_cosine: probe.queryCosine, across_images: probe.acrossImages };
  writeFileSync(join(dir, 'probe.json'), `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(
    join(dir, 'probe.html'),
    `<!doctype html><html><head><meta charset="utf-8"><title>Q-Former probe</title></head><body style="font-family:sans-serif">
<h1>Q-Former probe: ${images.length} image(s), ${probe.queryCosine.length} queries</h1>
${heatmap(probe.queryCosine, { title: 'cosine similarity between query outputs (mean over images)' })}
${groupedBars(probe.acrossImages.map((_, i) => String(i)), [{ name: 'cosine across images', values: probe.acrossImages }], { title: 'how much each query changes across images', yLabel: 'mean cosine', yMax: 1, width: 1000 })}
<p>Per-query linear probes need labelled images: the demo's run computes them on its world (report.html).</p></body></html>`,
  );
  log(JSON.stringify({ probe_json: join(dir, 'probe.json'), probe_html: join(dir, 'probe.html') }));
  blip2.dispose();
}

async function main() {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv[0] === '--' ? argv.slice(1) : argv);
  tf.enableProdMode();
  const backend = await selectBackend([args.backend, 'cpu']);
  const native = args.native && nativeMatMulAvailable() ? enableNativeMatMul() : null;
  info(`backend: ${backend}${native ? `, matMuls on @vlm/native-matmul (${native.isa}, ${native.threads} threads)` : ', stock matMul kernels'}`);
  switch (args.command) {
    case 'run':
      await runAll({ ...args, out: here(args.out) }, log);
      break;
    case 'caption':
      await answerEach(args, CAPTION_PROMPT, 'caption');
      break;
    case 'ask':
      if (!args.question) throw new Error('ask: expected --question "..."');
      await answerEach(args, `<image> question: ${args.question.trim().toLowerCase()} answer:`, 'answer');
      break;
    case 'openflamingo': {
      const dir = args.positional[0];
      if (!dir || !args.image) throw new Error('openflamingo: expected CHECKPOINT_DIR --image IMAGE.png [--prompt "<image>A photo of"]');
      const model = await loadOpenFlamingo(here(dir));
      const [{ image }] = await readImages([args.image]);
      const prompt = args.prompt ?? '<image>A photo of';
      const r = model.generate({ images: [[image!]], prompt, maxNewTokens: 20 });
      log(JSON.stringify({ image: args.image, prompt, text: r.text?.[0] ?? null, ids: r.newTokens[0] }));
      tf.dispose([r.sequences, r.stepLogits]);
      model.dispose();
      break;
    }
    case 'blip2': {
      const dir = args.positional[0];
      if (!dir || !args.image) throw new Error('blip2: expected HF_DIR --image IMAGE.png [--prompt "Question: ... Answer:"]');
      const model = await loadBlip2(here(dir));
      const [{ image }] = await readImages([args.image]);
      // Without a tokenizer.json in the folder: the prompt is BOS alone (and the reply is ids).
      const prompt = model.tokenizer ? (args.prompt ?? '') : tf.tensor2d(model.expandImageTokens([[model.lm.info.bosTokenId ?? 0]], 1), undefined, 'int32');
      if (!model.tokenizer && args.prompt) info('blip2: the folder has no tokenizer.json: the prompt is ignored, the answer is token ids');
      const r = model.generate({ images: [[image!]], prompt, maxNewTokens: 20 });
      if (prompt instanceof tf.Tensor) prompt.dispose();
      log(JSON.stringify({ image: basename(args.image), prompt: args.prompt ?? '', text: r.text?.[0] ?? null, ids: r.newTokens[0] }));
      model.dispose();
      break;
    }
    case 'probe':
      await probeCommand(args);
      break;
  }
}

main().catch((e) => {
  const err = e as Error & { usage?: boolean };
  process.stderr.write(err.usage ? `${err.message}\n` : `demo failed: ${err.stack ?? err}\n${USAGE}\n`);
  process.exit(err.usage ? 0 : 1);
});
