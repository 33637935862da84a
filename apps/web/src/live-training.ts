// Live training: a fresh Flamingo bridge (Perceiver Resampler + gated cross-attention before every
// LM layer) trained in the page with @vlm/train on captions of world scenes; the encoder and the
// LM stay frozen. Browser-safe: the browser test also runs it in Node to compare steps/s.
import * as tf from '@tensorflow/tfjs-core';
import { causalLmLoss, manualSeed, withoutReadbackChecks } from '@vlm/core';
import { preprocessImages, type LMTokenizer, type VisionEncoder } from '@vlm/frozen-loaders';
import { Flamingo, paddedLmRows, tokenizePromptTarget, type FlamingoBridgeConfig } from '@vlm/pipelines';
import { IMAGE_TOKEN, END_OF_CHUNK, canonicalCaption, renderScene, sceneQuestions, splitScenes, type Scene } from '@vlm/shapeworld';
import { AdamW, Trainer, cosineScheduleWithWarmup, flamingoParamGroups, namedParameters, tensorDataset, type StepMetrics } from '@vlm/train';

/** The caption prompt: the world's captions start "a …", so `<image> a` asks for one. */
export const CAPTION_PROMPT = `${IMAGE_TOKEN} a`;

/** A question's prompt. */
export const questionPrompt = (question: string) => `${IMAGE_TOKEN} question: ${question} answer:`;

/** Caption (and question) examples of world scenes as fixed-width tensors (one width: no new kernels per step on WebGPU). */
export interface CaptionSet {
  /** Standardized vision tokens `[N, 1, tokens, width]`. */
  visionTokens: tf.Tensor4D;
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  /** Ids of the caption or answer, -100 (IGNORE_INDEX) on the prompt and the padding. */
  labels: tf.Tensor2D;
  scenes: Scene[];
}

/**
 * Encodes `count` one-object training scenes (seeded) and tokenizes their captions, plus
 * `questionsPerScene` of their questions (`sceneQuestions`, kinds in rotation) as further rows.
 */
export async function captionSet(encoder: VisionEncoder, tokenizer: LMTokenizer, padId: number, count: number, seed: number, questionsPerScene = 0): Promise<CaptionSet> {
  const scenes = splitScenes('train', count, { seed, objects: 1 });
  const chunks: tf.Tensor3D[] = [];
  for (let i = 0; i < scenes.length; i += 8) {
    const images = scenes.slice(i, i + 8).map((s) => renderScene(s));
    chunks.push(tf.tidy(() => encoder.encode(preprocessImages(images, encoder.preprocessing))));
    await tf.nextFrame();
  }
  const row = (scene: number, promptText: string, answer: string) => ({ scene, ...tokenizePromptTarget(tokenizer, promptText, answer, END_OF_CHUNK) });
  const rows = scenes.map((s, i) => row(i, CAPTION_PROMPT, canonicalCaption(s).replace(/^an? /, '')));
  scenes.forEach((s, i) => {
    const qs = sceneQuestions(s);
    for (let j = 0; j < questionsPerScene; j++) {
      const q = qs[(i * questionsPerScene + j) % qs.length]!;
      rows.push(row(i, questionPrompt(q.question), q.answer));
    }
  });
  const lm = paddedLmRows(rows, padId); // one width for all rows
  const visionTokens = tf.tidy(() => {
    const all = tf.concat(chunks);
    const perRow = questionsPerScene > 0 ? tf.gather(all, tf.tensor1d(rows.map((r) => r.scene), 'int32')) : all;
    return tf.expandDims(perRow, 1) as tf.Tensor4D;
  });
  tf.dispose(chunks);
  return {
    visionTokens,
    inputIds: tf.tensor2d(lm.inputIds, undefined, 'int32'),
    attentionMask: tf.tensor2d(lm.attentionMask, undefined, 'int32'),
    labels: tf.tensor2d(lm.labels, undefined, 'int32'),
    scenes,
  };
}

export function disposeCaptionSet(set: CaptionSet): void {
  tf.dispose([set.visionTokens, set.inputIds, set.attentionMask, set.labels]);
}

/** A live step: the trainer's metrics and the gates' `tanh(α)` per layer. */
export interface LiveStep {
  step: number;
  totalSteps: number;
  loss: number;
  stepsPerSecond: number;
  gates: Array<{ layer: number; attn: number; ff: number }>;
}

export interface LiveTrainingOptions {
  steps: number;
  batchSize: number;
  /** Base learning rate (the gates train at 10×, as in the demo). */
  lr: number;
  seed: number;
  onStep?: (s: LiveStep) => void | Promise<void>;
}

/** Makes a fresh (seeded) Flamingo bridge around the frozen parts. */
export function freshFlamingo(args: { encoder: VisionEncoder; lm: ConstructorParameters<typeof Flamingo>[0]['lm']; tokenizer: LMTokenizer; bridge: FlamingoBridgeConfig; seed: number }): Flamingo {
  manualSeed(args.seed);
  return new Flamingo({ vision: args.encoder, lm: args.lm, bridge: args.bridge, tokenizer: args.tokenizer });
}

/**
 * Trains `flamingo`'s bridge on `set` for `options.steps` AdamW steps (OpenFlamingo's weight-decay
 * groups, gates at 10× the lr, warmup + cosine, clipping at 1). Frees its optimizer; the model
 * keeps the trained weights.
 */
export async function trainLive(flamingo: Flamingo, set: CaptionSet, options: LiveTrainingOptions): Promise<{ losses: number[]; stepsPerSecond: number; seconds: number }> {
  const groups = flamingoParamGroups(namedParameters(flamingo), { lr: options.lr });
  const optimizer = new AdamW(groups, { lr: options.lr });
  // The data's ids checked once, on the host (one asynchronous read): then the loss runs without
  // the forward's synchronous read-back checks (on WebGPU a synchronous read stalls the GPU, or
  // loses the device in headless Chromium without one).
  flamingo.checkInputIds((await set.inputIds.array()) as number[][], set.visionTokens.shape[1]!, 'live training inputIds');
  const data = tensorDataset({ visionTokens: set.visionTokens, inputIds: set.inputIds, attentionMask: set.attentionMask, labels: set.labels });
  let last: StepMetrics | undefined;
  const trainer = new Trainer({
    optimizer,
    data,
    batchSize: options.batchSize,
    dropLast: true, // one batch shape throughout
    steps: options.steps,
    seed: options.seed,
    loss: (b) => withoutReadbackChecks(() => causalLmLoss(flamingo.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, visionTokens: b.visionTokens }).logits, b.labels)),
    schedule: cosineScheduleWithWarmup({ warmupSteps: Math.max(1, Math.round(options.steps / 10)), trainingSteps: options.steps }),
    clipGradNorm: 1,
    callbacks: [
      {
        onStep: async (m) => {
          last = m;
          await options.onStep?.({ step: m.step, totalSteps: m.totalSteps, loss: m.loss, stepsPerSecond: m.stepsPerSecond, gates: await flamingo.gateValuesAsync() });
        },
      },
    ],
  });
  const t0 = performance.now();
  try {
    const { losses } = await trainer.fit();
    return { losses, stepsPerSecond: last?.stepsPerSecond ?? 0, seconds: (performance.now() - t0) / 1000 };
  } finally {
    optimizer.dispose();
  }
}
