/**
 * The benchmark configurations: the same modules, shapes and FLOP counts as the PyTorch
 * reference `shared/reference/bench_torch.py` (full size, and `--quick`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '@vlm/core';
import { FlamingoPerceiverResampler, PerceiverResampler } from '@vlm/perceiver';
import { GatedCrossAttention, GatedCrossAttentionBlock } from '@vlm/gated-xattn';
import { QFormer, type QFormerArgs } from '@vlm/qformer';

/** Names of the configurations, in the order bench_torch.py runs them. */
export const CONFIG_NAMES = ['perceiver_seed', 'perceiver_flamingo', 'xattn_seed', 'xattn_flamingo', 'qformer', 'qformer_proj'] as const;
/** One configuration name. */
export type ConfigName = (typeof CONFIG_NAMES)[number];

/** A built configuration: the module, its inputs (batch-major) and its primary output. */
export interface BenchCase {
  name: ConfigName;
  model: Module;
  /** Inputs; every one has the batch as its first dimension, so they can be split into micro-batches. */
  inputs: tf.Tensor[];
  /** The primary output (the tensor bench_torch.py's `primary_output` returns) for a slice of `inputs`. */
  forward: (inputs: tf.Tensor[]) => tf.Tensor;
  /** bench_torch.py's `shapes` field. */
  shapes: Record<string, number[] | number>;
  /** Forward matmul FLOPs (bench_torch.py's formulas). */
  flops: number;
}

/** A configuration before it is built (building allocates the weights). */
export interface BenchConfig {
  name: ConfigName;
  build: () => BenchCase;
}

const mm = (m: number, n: number, k: number) => 2 * m * n * k;

function flopsSeedPerceiver(B: number, N: number, d: number, Q: number, L: number): number {
  const per =
    mm(B * Q, d, d) + 2 * mm(B * N, d, d) + 2 * mm(B * Q, N, d) + mm(B * Q, d, d) + 4 * mm(B * Q, d, d) + 2 * mm(B * Q, Q, d) + 2 * mm(B * Q, 4 * d, d);
  return L * per;
}

function flopsSeedXattn(B: number, Nt: number, Nv: number, d: number): number {
  return 2 * mm(B * Nt, d, d) + 2 * mm(B * Nv, d, d) + 2 * mm(B * Nt, Nv, d);
}

function flopsFlamingoPerceiver(B: number, T: number, FV: number, d: number, nl: number, dh: number, h: number, depth: number, mult = 4): number {
  const inner = dh * h;
  const per =
    mm(B * T * nl, inner, d) + mm(B * T * (FV + nl), 2 * inner, d) + 2 * mm(B * T * nl, FV + nl, inner) + mm(B * T * nl, d, inner) + 2 * mm(B * T * nl, d * mult, d);
  return depth * per;
}

function flopsFlamingoXattn(B: number, Nt: number, Tm: number, m: number, d: number, dv: number, dh: number, h: number, mult: number): number {
  const inner = dh * h;
  return mm(B * Nt, inner, d) + mm(B * Tm * m, 2 * inner, dv) + 2 * mm(B * Nt, Tm * m, inner) + mm(B * Nt, d, inner) + 2 * mm(B * Nt, d * mult, d);
}

function flopsQformer(B: number, Q: number, M: number, H: number, E: number, I: number, L: number, freq: number, llm?: number): number {
  let tot = 0;
  for (let i = 0; i < L; i++) {
    tot += 4 * mm(B * Q, H, H) + 2 * mm(B * Q, Q, H);
    if (i % freq === 0) tot += 2 * mm(B * Q, H, H) + 2 * mm(B * M, H, E) + 2 * mm(B * Q, M, H);
    tot += 2 * mm(B * Q, I, H);
  }
  return llm ? tot + mm(B * Q, llm, H) : tot;
}

/** Two `<image>` markers, at 1/8 and 1/2 of the text (bench_torch.py's `media_locs`), as float 0/1. */
function mediaLocs(B: number, n: number, nImages: number): tf.Tensor {
  const pos = [Math.floor(n / 8), Math.floor(n / 2)].slice(0, nImages);
  const row = Array.from({ length: n }, (_, i) => (pos.includes(i) ? 1 : 0));
  return tf.tensor2d(Array.from({ length: B }, () => row), [B, n], 'float32');
}

function qformerCase(name: 'qformer' | 'qformer_proj', args: QFormerArgs, B: number, M: number, flops: number, extraShapes: Record<string, number> = {}): BenchCase {
  const model = new QFormer(args);
  const E = args.encoderHiddenSize!;
  return {
    name,
    model,
    inputs: [tf.randomNormal([B, M, E], 0, 1, 'float32', 1)],
    forward: ([x]) => {
      const out = model.encode({ imageEmbeds: x!, mode: 'query' });
      const keep = name === 'qformer' ? out.lastHiddenState : out.projected!;
      tf.dispose(Object.values(out).filter((t) => t !== keep));
      return keep;
    },
    shapes: { image_embeds: [B, M, E], ...extraShapes },
    flops,
  };
}

/** The six configurations at full size, or at bench_torch.py's `--quick` size. */
export function benchConfigs(quick: boolean): BenchConfig[] {
  const r = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  if (quick) {
    const [B, N, d] = [2, 33, 128];
    const qc: QFormerArgs = {
      hiddenSize: 128, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 256, crossAttentionFrequency: 2,
      encoderHiddenSize: 96, numQueryTokens: 8, useTextInput: false,
    };
    return [
      { name: 'perceiver_seed', build: () => perceiverSeed(new PerceiverResampler({ dim: d, numQueries: 16, numLayers: 2, numHeads: 4 }), r([B, N, d], 1), flopsSeedPerceiver(B, N, d, 16, 2)) },
      {
        name: 'perceiver_flamingo',
        build: () => perceiverFlamingo(new FlamingoPerceiverResampler({ dim: d, depth: 2, dimHead: 32, heads: 4, numLatents: 16 }), r([B, 1, 1, N, d], 1), flopsFlamingoPerceiver(B, 1, N, d, 16, 32, 4, 2)),
      },
      { name: 'xattn_seed', build: () => xattnSeed(new GatedCrossAttention({ dim: 256, numHeads: 4 }), r([B, 32, 256], 1), r([B, 16, 256], 2), flopsSeedXattn(B, 32, 16, 256)) },
      {
        name: 'xattn_flamingo',
        build: () =>
          xattnFlamingo(
            new GatedCrossAttentionBlock({ dim: 256, dimVisual: 128, dimHead: 32, heads: 8, ffMult: 4 }),
            r([B, 32, 256], 1), r([B, 2, 16, 128], 2), mediaLocs(B, 32, 2), {},
            flopsFlamingoXattn(B, 32, 2, 16, 256, 128, 32, 8, 4),
          ),
      },
      { name: 'qformer', build: () => qformerCase('qformer', qc, B, 33, flopsQformer(B, 8, 33, 128, 96, 256, 2, 2)) },
      { name: 'qformer_proj', build: () => qformerCase('qformer_proj', { ...qc, llmHiddenSize: 192 }, B, 33, flopsQformer(B, 8, 33, 128, 96, 256, 2, 2, 192)) },
    ];
  }
  const B = 8;
  const qc: QFormerArgs = {
    hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072, crossAttentionFrequency: 2,
    encoderHiddenSize: 1408, numQueryTokens: 32, useTextInput: false,
  };
  return [
    {
      name: 'perceiver_seed',
      build: () => perceiverSeed(new PerceiverResampler({ dim: 1024, numQueries: 64, numLayers: 6, numHeads: 8 }), r([B, 257, 1024], 1), flopsSeedPerceiver(B, 257, 1024, 64, 6)),
    },
    {
      name: 'perceiver_flamingo',
      build: () =>
        perceiverFlamingo(
          new FlamingoPerceiverResampler({ dim: 1024, depth: 6, dimHead: 64, heads: 8, numLatents: 64 }),
          r([B, 1, 1, 257, 1024], 1), flopsFlamingoPerceiver(B, 1, 257, 1024, 64, 64, 8, 6),
        ),
    },
    { name: 'xattn_seed', build: () => xattnSeed(new GatedCrossAttention({ dim: 2048, numHeads: 16 }), r([B, 128, 2048], 1), r([B, 64, 2048], 2), flopsSeedXattn(B, 128, 64, 2048)) },
    {
      name: 'xattn_flamingo',
      build: () =>
        xattnFlamingo(
          new GatedCrossAttentionBlock({ dim: 2048, dimVisual: 1024, dimHead: 128, heads: 16, ffMult: 4 }),
          r([B, 128, 2048], 1), r([B, 2, 64, 1024], 2), mediaLocs(B, 128, 2), { images_in_text: 2 },
          flopsFlamingoXattn(B, 128, 2, 64, 2048, 1024, 128, 16, 4),
        ),
    },
    { name: 'qformer', build: () => qformerCase('qformer', qc, B, 257, flopsQformer(B, 32, 257, 768, 1408, 3072, 12, 2)) },
    {
      name: 'qformer_proj',
      build: () => qformerCase('qformer_proj', { ...qc, llmHiddenSize: 2560 }, B, 257, flopsQformer(B, 32, 257, 768, 1408, 3072, 12, 2, 2560), { llm_hidden_size: 2560 }),
    },
  ];
}

function perceiverSeed(model: PerceiverResampler, x: tf.Tensor, flops: number): BenchCase {
  return { name: 'perceiver_seed', model, inputs: [x], forward: ([v]) => model.forward(v!), shapes: { x: x.shape }, flops };
}

function perceiverFlamingo(model: FlamingoPerceiverResampler, x: tf.Tensor, flops: number): BenchCase {
  return { name: 'perceiver_flamingo', model, inputs: [x], forward: ([v]) => model.forward(v!), shapes: { x: x.shape }, flops };
}

function xattnSeed(model: GatedCrossAttention, text: tf.Tensor, visual: tf.Tensor, flops: number): BenchCase {
  return { name: 'xattn_seed', model, inputs: [text, visual], forward: ([t, v]) => model.forward(t!, v!), shapes: { text: text.shape, visual: visual.shape }, flops };
}

function xattnFlamingo(model: GatedCrossAttentionBlock, text: tf.Tensor, media: tf.Tensor, locs: tf.Tensor, extra: Record<string, number>, flops: number): BenchCase {
  return {
    name: 'xattn_flamingo',
    model,
    inputs: [text, media, locs],
    forward: ([t, m, l]) => model.forward(t!, m!, l!),
    shapes: { text: text.shape, media: media.shape, ...extra },
    flops,
  };
}
