// The README's example, run as it is: the code between the markers below must equal the
// README's ```ts block (checked first). It trains a Perceiver Resampler + gated cross-attention
// between a frozen CLIP-style encoder (features cached as safetensors) and a frozen GPT-2-style
// LM with AdamW groups, a cosine schedule and checkpoints, resumes, and leaves both backbones
// bit-identical.
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { causalLmLoss, freeze } from '@vlm/core';
import { ClipVisionModel, createDecoderLM, parseClipVisionConfig } from '@vlm/frozen-loaders';
import { FlamingoPerceiverResampler } from '@vlm/perceiver';
import { FlamingoLM } from '@vlm/gated-xattn';
import { AdamW, FeatureCache, Trainer, cosineScheduleWithWarmup, namedParameters, weightDecayGroups } from '@vlm/train';
import { FileCheckpointStore, ProgressBar, SafetensorsFeatureStore } from '@vlm/train/node';

const here = __filename;

/** The lines between two marker comments of `text`, each trimmed (indentation is not compared). */
function exampleOf(text: string, start: string, end: string): string[] {
  const from = text.lastIndexOf(start);
  return lines(text.slice(text.indexOf('\n', from) + 1, text.indexOf(end, from)));
}

const lines = (code: string) => code.trim().split('\n').map((l) => l.trim()).filter((l, i, all) => l !== '' || (i > 0 && all[i - 1] !== ''));

describe('README example', () => {
  it('is the code this test runs', () => {
    const readme = readFileSync(resolve(__dirname, '../README.md'), 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## Example')))![1]!.trim();
    const imports = block.slice(0, block.indexOf('\n\n'));
    const body = block.slice(block.indexOf('\n\n')).trim();
    const source = readFileSync(here, 'utf8');
    for (const line of imports.split('\n')) expect(source).toContain(line);
    expect(lines(body)).toEqual(exampleOf(source, '// README example: start', '// README example: end'));
  });

  it('runs: trains the bridge, checkpoints, resumes; the frozen encoder and LM stay bit-identical', async () => {
    const cwd = process.cwd();
    const dir = mkdtempSync(join(tmpdir(), 'vlm-train-readme-'));
    process.chdir(dir);
    const before = tf.memory().numTensors;
    try {
      // README example: start
      // Frozen backbones: tiny random ones here; loadClipVisionModel / loadDecoderLM load real checkpoints.
      const vision = freeze(new ClipVisionModel(parseClipVisionConfig({ hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, image_size: 32, patch_size: 8 })));
      const lm = createDecoderLM({ model_type: 'gpt2', vocab_size: 50, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 4 });
      const images = tf.randomUniform([16, 3, 32, 32], 0, 1, 'float32', 1);
      const text = tf.randomUniform([16, 5], 2, 50, 'int32', 2);
      const inputIds = tf.pad(text, [[0, 0], [1, 0]], 1); // <image> (token 1), then the caption
      const labels = tf.pad(text, [[0, 0], [1, 0]], -100); // no loss on <image>
      const frozenBefore = [...vision.parameters(), ...lm.parameters()].map((v) => v.dataSync().slice());

      // 1. Run the frozen encoder once; the features are cached on disk, keyed by encoder and preprocessing.
      const cache = await FeatureCache.build({
        key: { encoder: vision.name, preprocessing: vision.preprocessing },
        size: 16,
        encode: (idx) => vision.encode(tf.gather(images, idx)),
        store: new SafetensorsFeatureStore('.cache/features'),
      });

      // 2. The bridge: a Perceiver Resampler and gated cross-attention blocks (FlamingoLM freezes the LM).
      const perceiver = new FlamingoPerceiverResampler({ dim: 32, depth: 1, dimHead: 8, heads: 4, numLatents: 4 });
      const flamingo = new FlamingoLM({ lm, dimVisual: 32, crossAttnEveryNLayers: 1, dimHead: 8, heads: 4, mediaTokenId: 1 });

      // 3. AdamW with weight decay on the bridge's matrices only (not gates, norms, biases), cosine schedule, checkpoints.
      const params = namedParameters({ perceiver, lang_encoder: flamingo });
      const trainer = new Trainer({
        optimizer: new AdamW(weightDecayGroups(params, { weightDecay: 0.1 }), { lr: 3e-3 }),
        data: { size: 16, batch: (idx: number[]) => ({ tokens: cache.gather(idx), ids: tf.gather(inputIds, idx), targets: tf.gather(labels, idx) }) },
        batchSize: 4,
        steps: 20,
        loss: ({ tokens, ids, targets }) => {
          const media = perceiver.forward(tf.reshape(tokens, [tokens.shape[0]!, 1, 1, -1, 32])); // [b, 1 image, 1 frame, tokens, dim]
          return causalLmLoss(flamingo.forward({ inputIds: ids, media }).logits, targets);
        },
        schedule: cosineScheduleWithWarmup({ warmupSteps: 2, trainingSteps: 20 }),
        clipGradNorm: 1,
        checkpoints: { store: new FileCheckpointStore('runs/flamingo', { keepLast: 2 }), every: 10 },
        callbacks: [new ProgressBar()],
      });
      await trainer.restore(); // resumes from runs/flamingo/checkpoint-<latest step>, if there is one
      const { losses } = await trainer.fit();
      const frozenAfter = [...vision.parameters(), ...lm.parameters()].map((v) => v.dataSync());
      console.log(`loss ${losses[0]} → ${losses.at(-1)}; frozen backbones bit-identical: ${frozenAfter.every((a, i) => a.every((x, j) => Object.is(x, frozenBefore[i]![j])))}`);
      // README example: end

      expect(losses).toHaveLength(20);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      expect(frozenAfter.every((a, i) => a.every((x, j) => Object.is(x, frozenBefore[i]![j])))).toBe(true);
      expect(readdirSync('runs/flamingo').sort()).toEqual(['checkpoint-10', 'checkpoint-20']);
      expect(readdirSync('.cache/features')).toHaveLength(1);
      expect(params.some((p) => p.name.startsWith('lang_encoder.gated_cross_attn_layers.'))).toBe(true);

      // a second process with fresh bridge weights resumes at step 20 from the checkpoint and has the same weights
      const perceiver2 = new FlamingoPerceiverResampler({ dim: 32, depth: 1, dimHead: 8, heads: 4, numLatents: 4 });
      const flamingo2 = new FlamingoLM({ lm, dimVisual: 32, crossAttnEveryNLayers: 1, dimHead: 8, heads: 4, mediaTokenId: 1 });
      const again = new Trainer({
        optimizer: new AdamW(weightDecayGroups(namedParameters({ perceiver: perceiver2, lang_encoder: flamingo2 }), { weightDecay: 0.1 }), { lr: 3e-3 }),
        data: { size: 16, batch: (idx: number[]) => ({ tokens: cache.gather(idx) }) },
        batchSize: 4,
        steps: 20,
        loss: () => tf.scalar(0),
        schedule: cosineScheduleWithWarmup({ warmupSteps: 2, trainingSteps: 20 }),
        checkpoints: { store: new FileCheckpointStore('runs/flamingo', { keepLast: 2 }), every: 10 },
      });
      expect(await again.restore()).toBe(20);
      const bits = (ps: tf.Variable[]) => ps.map((v) => Array.from(new Uint32Array(v.dataSync().slice().buffer)));
      expect(bits([...perceiver2.parameters(), ...flamingo2.parameters()])).toEqual(bits([...perceiver.parameters(), ...flamingo.parameters()]));
      // the cache is read back, not recomputed
      const cached = await FeatureCache.build({ key: { encoder: vision.name, preprocessing: vision.preprocessing }, size: 16, encode: () => { throw new Error('encoder ran again'); }, store: new SafetensorsFeatureStore('.cache/features') });
      expect(cached.fromStore).toBe(true);
      expect(existsSync('runs/flamingo/checkpoint-20/model.safetensors')).toBe(true);

      for (const t of [trainer, again]) t.dispose();
      for (const m of [perceiver, perceiver2, flamingo2, flamingo, vision, lm]) m.dispose();
      for (const c of [cache, cached]) c.dispose();
      tf.dispose([images, text, inputIds, labels]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
