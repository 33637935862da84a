import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { QFormer, type QFormerMode } from '@vlm/qformer';
import { loadGolden, tolRatio } from './helpers';

// Every vendored qformer_* case: forward, every parameter gradient (exact zeros included) and
// the image gradient, through the public API, on the backend the run selected.
const CASES = ['qformer_query', 'qformer_query_proj', 'qformer_itm', 'qformer_itg', 'qformer_itc', 'qformer_itc_text'];

describe('QFormer matches the PyTorch golden cases', () => {
  for (const name of CASES) {
    test(name, () => {
      const g = loadGolden(name);
      const before = tf.memory().numTensors;
      const q = new QFormer(g.args);
      q.loadStateDict(g.params);
      const mode = g.sidecar.forward.mode as QFormerMode;
      const projected = g.sidecar.forward.output === 'projected';
      const image = g.tensors['input.image_embeds'];
      const imageVar = mode !== 'text' && image ? tf.variable(image) : undefined;
      const run = () => {
        const out = q.encode({
          imageEmbeds: imageVar,
          inputIds: mode === 'query' ? undefined : g.tensors['input.input_ids'],
          attentionMask: mode === 'query' ? undefined : g.tensors['input.attention_mask'],
          mode,
        });
        return projected ? out.projected! : out.lastHiddenState;
      };
      const out = tf.tidy(run);
      expect(tolRatio(out, g.tensors['output.out']!, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
      const w = g.tensors['input.loss_weight']!;
      const vars = [...q.parameters(), ...(imageVar ? [imageVar] : [])];
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(run(), w)) as tf.Scalar, vars);
      for (const [key, v] of q.namedParameters()) {
        const golden = g.tensors[`grad_param.${key}`]!;
        const got = grads[v.name] ? q.toStateDictLayout(key, grads[v.name]!) : tf.zerosLike(golden);
        expect(tolRatio(got, golden, 1e-3, 1e-3), key).toBeLessThanOrEqual(1);
        got.dispose();
      }
      // the padding row of the word embeddings gets exactly zero gradient (padding_idx)
      if (mode !== 'query') {
        const wordGrad = grads[q.embeddings!.wordEmbeddings.weight.name]!;
        const padRow = tf.slice(wordGrad, [0, 0], [1, -1]);
        expect(Array.from(padRow.dataSync()).every((x) => x === 0)).toBe(true);
        padRow.dispose();
      }
      if (imageVar) expect(tolRatio(grads[imageVar.name]!, g.tensors['grad_input.image_embeds']!, 1e-3, 1e-3)).toBeLessThanOrEqual(1);
      tf.dispose([out, value, ...Object.values(grads)]);
      imageVar?.dispose();
      q.dispose();
      expect(tf.memory().numTensors).toBe(before);
      g.dispose();
    });
  }
});
