import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateGreedy, runDecoder, trainableVariables, writeSafetensors } from '@vlm/core';
import { generate, loadDecoderLMFromStateDict, loadDecoderLMSync, type CausalLM } from '../src/lm/index';
import { expectClose, readLMCase, rows, type LMCase } from './lm-helpers';

const FAMILIES = [
  { model: 'gpt2', hfClass: 'GPT2LMHeadModel', cases: ['plain', 'padded', 'embeds', 'basekeys'] },
  { model: 'opt', hfClass: 'OPTForCausalLM', cases: ['plain', 'padded'] },
  { model: 'llama', hfClass: 'LlamaForCausalLM', cases: ['plain', 'padded', 'tied'] },
] as const;

describe.each(FAMILIES)('$hfClass vs the vendored goldens', ({ model, hfClass, cases }) => {
  test.each(cases)(`${model}_%s: logits, hidden states and last layer output`, (kind) => {
    const c = readLMCase(`${model}_${kind}`);
    // a real model.safetensors: the weights alone, as save_pretrained() writes them
    const lm = loadDecoderLMSync({ config: JSON.stringify(c.config), weights: writeSafetensors(c.weights, { format: 'pt' }) });
    try {
      expect(lm.hfClass).toBe(hfClass);
      expect(trainableVariables(lm)).toHaveLength(0);
      const before = tf.memory().numTensors;
      const mask = c.tensors['input.attention_mask'];
      const out = lm.forward({
        inputIds: c.tensors['input.inputs_embeds'] ? undefined : c.tensors['input.input_ids'],
        inputsEmbeds: c.tensors['input.inputs_embeds'],
        attentionMask: mask,
        positionIds: c.tensors['input.position_ids'],
        outputHiddenStates: true,
      });
      const keep = mask ? tf.expandDims(mask, -1) : undefined;
      expectClose(out.logits, c.tensors['output.logits']!, 'logits', undefined, keep);
      expectClose(out.lastLayerOutput, c.tensors['output.last_layer_output']!, 'last_layer_output', undefined, keep);
      out.hiddenStates!.forEach((h, i) => expectClose(h, c.tensors[`output.hidden_states.${i}`]!, `hidden_states.${i}`, undefined, keep));
      tf.dispose([out.logits, out.lastLayerOutput, out.lastHiddenState, ...out.hiddenStates!, keep ?? []]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      lm.dispose();
      c.dispose();
    }
  });
});

describe.each(FAMILIES)('$hfClass generation', ({ model }) => {
  let c: LMCase;
  let lm: CausalLM;
  beforeAll(() => {
    c = readLMCase(`${model}_generate`);
    lm = loadDecoderLMFromStateDict(c.config, c.weights);
  });
  afterAll(() => {
    lm.dispose();
    c.dispose();
  });

  test('greedy decoding reproduces generated_ids exactly and step_logits within tolerance, without leaking', () => {
    const before = tf.memory().numTensors;
    const { sequences, stepLogits } = generate(lm, { inputIds: c.tensors['input.input_ids']!, maxNewTokens: 6, returnStepLogits: true });
    expect(sequences).toEqual(rows(c.tensors['output.generated_ids']!));
    expectClose(stepLogits!, c.tensors['output.step_logits']!, 'step_logits');
    stepLogits!.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test("core's generateGreedy driving lm.forward gives the same ids", () => {
    const { sequences, stepLogits } = generateGreedy((a) => lm.forward(a), { inputIds: c.tensors['input.input_ids']!, maxNewTokens: 6 });
    expect(rows(sequences)).toEqual(rows(c.tensors['output.generated_ids']!));
    expectClose(stepLogits, c.tensors['output.step_logits']!, 'step_logits');
    tf.dispose([sequences, stepLogits]);
  });

  test('with and without the KV cache: same tokens, step logits within 1e-5', () => {
    const ids = c.tensors['input.input_ids']!;
    const a = generate(lm, { inputIds: ids, maxNewTokens: 6, returnStepLogits: true, useCache: true });
    const b = generate(lm, { inputIds: ids, maxNewTokens: 6, returnStepLogits: true, useCache: false });
    expect(a.sequences).toEqual(b.sequences);
    expectClose(a.stepLogits!, b.stepLogits!, 'cached vs uncached step logits', { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([a.stepLogits!, b.stepLogits!]);
  });

  test('a forward pass with a KV cache equals the full pass', () => {
    const ids = rows(c.tensors['input.input_ids']!)[0]!;
    const full = lm.forward({ inputIds: tf.tensor2d([ids], undefined, 'int32') });
    const first = lm.forward({ inputIds: tf.tensor2d([ids.slice(0, 3)], undefined, 'int32'), useCache: true });
    const rest = lm.forward({ inputIds: tf.tensor2d([ids.slice(3)], undefined, 'int32'), pastKeyValues: first.pastKeyValues, useCache: true });
    expect(rest.pastKeyValues!.length).toBe(ids.length);
    const tail = tf.slice(full.logits, [0, 3, 0], [-1, -1, -1]);
    expectClose(rest.logits, tail, 'cached logits', { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([full, first, rest, tail] as unknown as tf.TensorContainer);
  });

  test('batched left-padded prompts generate the same tokens as each prompt alone', () => {
    const prompts = [[5, 17, 3], [9, 4, 22, 31, 8], [12]];
    const alone = prompts.map((p) => generate(lm, { inputIds: [p], maxNewTokens: 5, returnStepLogits: true }));
    const longest = Math.max(...prompts.map((p) => p.length));
    const pad = 1;
    const batch = generate(lm, {
      inputIds: prompts.map((p) => [...Array<number>(longest - p.length).fill(pad), ...p]),
      attentionMask: prompts.map((p) => [...Array<number>(longest - p.length).fill(0), ...Array<number>(p.length).fill(1)]),
      maxNewTokens: 5,
      returnStepLogits: true,
    });
    prompts.forEach((_, i) => {
      expect(batch.newTokens[i]).toEqual(alone[i]!.newTokens[0]);
      const row = tf.slice(batch.stepLogits!, [i, 0, 0], [1, -1, -1]);
      expectClose(row, alone[i]!.stepLogits!, `row ${i} step logits`, { atol: 1e-5, rtol: 1e-5 });
      row.dispose();
    });
    tf.dispose([batch.stepLogits!, ...alone.map((a) => a.stepLogits!)]);
  });

  test("core's runDecoder (the DecoderLM interface) gives the model's own logits; a beforeLayer hook runs before each layer", () => {
    const ids = c.tensors['input.input_ids']!;
    const own = lm.forward({ inputIds: ids });
    const seen: number[] = [];
    const viaCore = runDecoder(lm, { inputIds: ids }, { beforeLayer: (i, h) => (seen.push(i), h) });
    expect(seen).toEqual([...Array(lm.numLayers).keys()]);
    expectClose(viaCore.logits, own.logits, 'runDecoder logits', { atol: 1e-6, rtol: 1e-6 });
    tf.dispose([own, viaCore] as unknown as tf.TensorContainer);
  });
});
