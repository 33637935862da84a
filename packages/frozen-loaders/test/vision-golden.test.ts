import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { countParameters, writeSafetensors } from '@vlm/core';
import {
  ClipVisionModel,
  loadBlip2VisionModel,
  loadClipVisionModel,
  loadOpenClipVisionTransformer,
  parseClipVisionConfig,
  parseOpenClipVisionConfig,
} from '../src/vision/index';
import { GOLDEN_DIR, expectClose, readCase, type VisionCase } from './vision-helpers';

describe('CLIP vision tower (HF CLIPVisionModel keys) vs backbone_clip_plain', () => {
  let c: VisionCase;
  let clip: ClipVisionModel;
  beforeAll(() => {
    c = readCase(join(GOLDEN_DIR, 'backbone_clip_plain'));
    clip = loadClipVisionModel({ config: c.sidecar.config, weights: c.bytes });
  });
  afterAll(() => {
    clip.dispose();
    c.dispose();
  });

  test('every hidden state, last_hidden_state and pooler_output; no tensor leaks', () => {
    const pixels = c.tensors['input.pixel_values']!;
    const before = tf.memory().numTensors;
    const out = clip.forward(pixels, { outputHiddenStates: true });
    expect(out.hiddenStates).toHaveLength(3);
    out.hiddenStates.forEach((h, i) => expectClose(h, c.tensors[`output.hidden_states.${i}`]!, `hidden_states.${i}`));
    expectClose(out.lastHiddenState, c.tensors['output.last_hidden_state']!, 'last_hidden_state');
    expectClose(out.poolerOutput, c.tensors['output.pooler_output']!, 'pooler_output');
    tf.dispose([out.lastHiddenState, out.poolerOutput, ...out.hiddenStates]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('any layer with or without CLS: OpenFlamingo (last, patches) and LLaVA (penultimate, no CLS)', () => {
    const pixels = c.tensors['input.pixel_values']!;
    const cfg = parseClipVisionConfig(c.sidecar.config);
    const golden = (i: number, from: number) => tf.slice(c.tensors[`output.hidden_states.${i}`]!, [0, from, 0], [-1, -1, -1]);
    const before = tf.memory().numTensors;
    for (const [layer, index] of [[-1, 2], [-2, 1], [0, 0], [1, 1]] as const) {
      for (const includeCls of [true, false]) {
        const enc = new ClipVisionModel(cfg, { layer, includeCls });
        enc.loadStateDict(c.weights);
        const got = enc.encode(pixels);
        const want = golden(index, includeCls ? 0 : 1);
        expect(enc.numTokens).toBe(includeCls ? 17 : 16);
        expectClose(got, want, `layer ${layer} includeCls ${includeCls}`);
        tf.dispose([got, want]);
        enc.dispose();
      }
    }
    const h = clip.hiddenState(pixels, -2);
    expectClose(h, c.tensors['output.hidden_states.1']!, 'hiddenState(-2)');
    h.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('postLayerNorm applies post_layernorm to every returned token (open_clip-style features)', () => {
    const pixels = c.tensors['input.pixel_values']!;
    const enc = loadClipVisionModel({ config: c.sidecar.config, weights: c.bytes }, { layer: -1, postLayerNorm: true, includeCls: true });
    const got = enc.encode(pixels);
    const cls = tf.squeeze(tf.slice(got, [0, 0, 0], [-1, 1, -1]), [1]);
    expectClose(cls, c.tensors['output.pooler_output']!, 'post-LN CLS = pooler_output');
    tf.dispose([got, cls]);
    enc.dispose();
  });

  test('frozen on load: no trainable variable, gradients flow to the input only', () => {
    expect(clip.parameters().length).toBeGreaterThan(0);
    expect(clip.parameters().every((v) => !v.trainable)).toBe(true);
    expect(countParameters(clip, { trainableOnly: true })).toBe(0);
    const x = tf.variable(tf.clone(c.tensors['input.pixel_values']!));
    const { value, grads } = tf.variableGrads(() => tf.sum(clip.encode(x)) as tf.Scalar);
    expect(Object.keys(grads)).toEqual([x.name]);
    tf.dispose([value, x, ...Object.values(grads)]);
  });

  test('a whole CLIPModel checkpoint (text tower, projections, position_ids buffer) loads the same tower', () => {
    const extra = {
      ...c.weights,
      'text_model.embeddings.token_embedding.weight': tf.zeros([10, 8]),
      'visual_projection.weight': tf.zeros([16, 32]),
      logit_scale: tf.scalar(2.6),
      'vision_model.embeddings.position_ids': tf.range(0, 17, 1, 'int32').reshape([1, 17]),
    };
    const config = { model_type: 'clip', text_config: { hidden_size: 8 }, vision_config: c.sidecar.config };
    const whole = loadClipVisionModel({ config, weights: writeSafetensors(extra) });
    const o = whole.forward(c.tensors['input.pixel_values']!);
    expectClose(o.lastHiddenState, c.tensors['output.last_hidden_state']!, 'last_hidden_state from a CLIPModel checkpoint');
    tf.dispose([o.lastHiddenState, o.poolerOutput, extra['text_model.embeddings.token_embedding.weight'], extra['visual_projection.weight'], extra.logit_scale]);
    tf.dispose(extra['vision_model.embeddings.position_ids']);
    whole.dispose();
  });
});

describe('BLIP-2 vision tower (Blip2VisionModel) vs blip2/blip2_vision_*', () => {
  for (const name of ['blip2_vision_plain', 'blip2_vision_hidden_states']) {
    test(`${name}: outputs from its own keys and from vision_model.* of a whole BLIP-2 checkpoint`, () => {
      const c = readCase(join(GOLDEN_DIR, 'blip2', name));
      const pixels = c.tensors['input.pixel_values']!;
      const wantHidden = Object.keys(c.tensors).some((k) => k.startsWith('output.hidden_states.'));
      const before = tf.memory().numTensors;

      const own = loadBlip2VisionModel({ config: c.sidecar.config, weights: writeSafetensors(c.weights) });
      expect(own.parameters().every((v) => !v.trainable)).toBe(true);
      const out = own.forward(pixels, { outputHiddenStates: wantHidden });
      expectClose(out.lastHiddenState, c.tensors['output.last_hidden_state']!, 'last_hidden_state');
      expectClose(out.poolerOutput, c.tensors['output.pooler_output']!, 'pooler_output');
      out.hiddenStates.forEach((h, i) => expectClose(h, c.tensors[`output.hidden_states.${i}`]!, `hidden_states.${i}`));
      const tokens = own.encode(pixels);
      expectClose(tokens, c.tensors['output.last_hidden_state']!, 'encode() = last_hidden_state');
      tf.dispose([out.lastHiddenState, out.poolerOutput, ...out.hiddenStates, tokens]);
      own.dispose();

      // A whole Blip2ForConditionalGeneration checkpoint: vision keys under vision_model., others ignored.
      const whole: Record<string, tf.Tensor> = Object.fromEntries(Object.entries(c.weights).map(([k, t]) => [`vision_model.${k}`, t]));
      const junk = { query_tokens: tf.zeros([1, 4, 8]), 'qformer.layernorm.weight': tf.ones([8]) };
      const config = { model_type: 'blip-2', vision_config: c.sidecar.config, qformer_config: {}, text_config: { model_type: 'opt' } };
      const fromWhole = loadBlip2VisionModel({ config, weights: writeSafetensors({ ...whole, ...junk }) });
      const o = fromWhole.forward(pixels);
      expectClose(o.lastHiddenState, c.tensors['output.last_hidden_state']!, 'last_hidden_state (whole checkpoint)');
      tf.dispose([o.lastHiddenState, o.poolerOutput, ...Object.values(junk)]);
      fromWhole.dispose();
      expect(tf.memory().numTensors).toBe(before);
      c.dispose();
    });
  }

  test('LAVIS-style separate q_bias / v_bias are fused into qkv.bias (k third zero: same outputs)', () => {
    const c = readCase(join(GOLDEN_DIR, 'blip2', 'blip2_vision_plain'));
    const d = 32;
    const split: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(c.weights)) {
      const m = /^(.*)\.qkv\.bias$/.exec(k);
      if (!m) split[k] = t;
      else {
        split[`${m[1]}.q_bias`] = tf.slice(t, [0], [d]);
        split[`${m[1]}.v_bias`] = tf.slice(t, [2 * d], [d]);
      }
    }
    const vit = loadBlip2VisionModel({ config: c.sidecar.config, weights: writeSafetensors(split) });
    const o = vit.forward(c.tensors['input.pixel_values']!);
    expectClose(o.lastHiddenState, c.tensors['output.last_hidden_state']!, 'last_hidden_state with a zero key bias');
    tf.dispose([o.lastHiddenState, o.poolerOutput]);
    vit.dispose();
    tf.dispose(Object.entries(split).filter(([k]) => /_bias$/.test(k)).map(([, t]) => t));
    c.dispose();
  });
});

describe('open_clip ViT (OpenFlamingo vision_encoder.*) vs flamingo_e2e (OpenFlamingo + open_clip 3.3.0)', () => {
  for (const name of ['flamingo_e2e_n1', 'flamingo_e2e_n2']) {
    test(`${name}: output.vision_features and output.vision_tokens_pre_ln_post`, () => {
      const c = readCase(join(GOLDEN_DIR, 'flamingo_e2e', name));
      const cfg = parseOpenClipVisionConfig(c.sidecar.open_clip_config);
      expect(cfg.quickGelu).toBe(name === 'flamingo_e2e_n1'); // n1 QuickGELU, n2 exact GELU
      const tol = c.sidecar.case.tolerance as { atol: number; rtol: number };
      const visionX = c.tensors['input.vision_x']!; // (B, T, F, 3, H, W)
      const [b, t, f, ch, h, w] = visionX.shape as number[];
      const want = c.tensors['output.vision_features']!; // (B, T, F, g², W)
      const before = tf.memory().numTensors;

      // The whole Flamingo state dict (perceiver, LM, aliases): only vision_encoder.* is read.
      const vit = loadOpenClipVisionTransformer({ config: c.sidecar.open_clip_config, weights: c.bytes });
      expect(vit.parameters().every((v) => !v.trainable)).toBe(true);
      expect(vit.numTokens).toBe(16);
      const flat = tf.reshape(visionX, [b! * t! * f!, ch!, h!, w!]);
      const tokens = vit.encode(flat);
      const got = tf.reshape(tokens, want.shape);
      expectClose(got, want, 'vision_features', tol.atol, tol.rtol);

      const pre = loadOpenClipVisionTransformer({ config: c.sidecar.open_clip_config, weights: c.bytes }, { tokens: 'pre_ln_post' });
      const preTokens = pre.encode(flat);
      const gotPre = tf.reshape(preTokens, want.shape);
      expectClose(gotPre, c.tensors['output.vision_tokens_pre_ln_post']!, 'vision_tokens_pre_ln_post', tol.atol, tol.rtol);
      tf.dispose([flat, tokens, got, preTokens, gotPre]);
      vit.dispose();
      pre.dispose();
      expect(tf.memory().numTensors).toBe(before);
      c.dispose();
    });
  }

  test('final_ln_after_pool: true in the config selects the pre-ln_post tokens (older open_clip)', () => {
    const c = readCase(join(GOLDEN_DIR, 'flamingo_e2e', 'flamingo_e2e_n1'));
    const config = { ...c.sidecar.open_clip_config, vision_cfg: { ...c.sidecar.open_clip_config.vision_cfg, final_ln_after_pool: true } };
    const vit = loadOpenClipVisionTransformer({ config, weights: c.bytes });
    expect(vit.tokenOptions.tokens).toBe('pre_ln_post');
    vit.dispose();
    c.dispose();
  });
});
