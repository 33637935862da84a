import * as tf from '@tensorflow/tfjs-core';
import { disposeKVCache, type KVCache } from '@vlm/core';
import type { CausalLM, CausalLMOutput } from './causal-lm';
import { chooseToken, type SamplingOptions } from './sampling';
import { seededRandom } from '@vlm/core';

/** What {@link generate} reports after each step to `onToken`. */
export interface GeneratedTokenEvent {
  /** 0 for the first new token. */
  step: number;
  /** The new token of each row (`padTokenId` for rows that had already stopped). */
  tokens: number[];
  /** Whether each row has produced a stop token (this step or before). */
  finished: boolean[];
}

/** Options of {@link generate}. */
export interface GenerateOptions extends SamplingOptions {
  /** Prompt ids `[batch, promptTokens]` (int32 tensor or arrays), left-padded for batches of different lengths. */
  inputIds?: tf.Tensor | number[][];
  /**
   * Prompt embeddings `[batch, promptTokens, embedDim]` used instead of embedding `inputIds`
   * (BLIP-2's soft prompt). With `inputIds` too, those only prefix the returned `sequences`.
   */
  inputsEmbeds?: tf.Tensor;
  /** `[batch, promptTokens]`, `1` = real token, `0` = left padding. Default: all ones. */
  attentionMask?: tf.Tensor | number[][];
  /** Number of new tokens at most. */
  maxNewTokens: number;
  /** A row stops after producing one of these (it is kept); later tokens of the row are `padTokenId`. Default: none. */
  stopTokenIds?: number[];
  /** Filler of stopped rows. Default: the config's `pad_token_id`, else its first `eos_token_id`, else 0. */
  padTokenId?: number;
  /** Seed of the sampling generator; same seed, same tokens. Default: random. */
  seed?: number;
  /** Reuse keys and values between steps (same tokens, faster). Default: `true`. */
  useCache?: boolean;
  /** Also return the logits that chose each token. Default: `false`. */
  returnStepLogits?: boolean;
  /** Called after each step with the new tokens (streaming). */
  onToken?: (event: GeneratedTokenEvent) => void;
}

/** Result of {@link generate}. */
export interface GenerateResult {
  /** Prompt ids (pads included, when `inputIds` were given) followed by the new tokens, as HF `generate()`. */
  sequences: number[][];
  /** Only the new tokens of each row. */
  newTokens: number[][];
  /** With `returnStepLogits`: `[batch, steps, vocab]`, the raw logits of each step (the caller disposes it). */
  stepLogits?: tf.Tensor3D;
}

function toRows(x: tf.Tensor | number[][], what: string): number[][] {
  if (x instanceof tf.Tensor && x.rank !== 2) throw new Error(`generate: expected ${what} [batch, tokens], got shape [${x.shape.join(', ')}]`);
  // (arraySync of a [b, 0] tensor gives [], not b empty rows)
  const rows = x instanceof tf.Tensor ? (x.size === 0 ? Array.from({ length: x.shape[0]! }, () => []) : (x.arraySync() as number[][])) : x;
  if (!Array.isArray(rows) || rows.some((r) => !Array.isArray(r) || r.length !== rows[0]!.length)) {
    throw new Error(`generate: expected ${what} [batch, tokens] (rows of equal length), got ${Array.isArray(rows) ? 'rows of different lengths or non-arrays' : typeof rows}`);
  }
  if (rows.length === 0) throw new Error(`generate: expected ${what} [batch >= 1, tokens], got an empty batch`);
  return rows;
}

/**
 * Autoregressive decoding with a frozen {@link CausalLM}, as Hugging Face `generate()`: greedy
 * or sampled (temperature, top-k, top-p, seeded), batched left-padded prompts (positions
 * `cumsum(mask) − 1` from the growing attention mask, as HF), stop tokens, a KV
 * cache, and a streaming callback. Each call runs its forward passes in `tf.tidy`; only
 * `stepLogits` (when asked for) outlives it.
 *
 * @example
 * ```ts
 * const { sequences } = generate(lm, { inputIds: [[0, 0, 5, 7], [3, 4, 5, 7]], attentionMask: [[0, 0, 1, 1], [1, 1, 1, 1]], maxNewTokens: 6 });
 * sequences[0].length; // 10 (4 prompt + 6 new)
 * ```
 */
export function generate(model: CausalLM, options: GenerateOptions): GenerateResult {
  const { maxNewTokens } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  if (!options.inputIds && !options.inputsEmbeds) throw new Error('generate: pass inputIds or inputsEmbeds');
  const promptIds = options.inputIds ? toRows(options.inputIds, 'inputIds') : undefined;
  const batch = options.inputsEmbeds ? options.inputsEmbeds.shape[0]! : promptIds!.length;
  const promptLength = options.inputsEmbeds ? options.inputsEmbeds.shape[1]! : promptIds![0]!.length;
  if (promptIds && (promptIds.length !== batch || promptIds[0]!.length !== promptLength)) {
    throw new Error(`generate: inputIds [${promptIds.length}, ${promptIds[0]!.length}] and inputsEmbeds [${options.inputsEmbeds!.shape}] disagree`);
  }
  if (batch === 0) throw new Error('generate: expected a prompt of batch >= 1, got an empty batch');
  if (promptLength === 0) {
    throw new Error(`generate: expected a prompt of at least 1 token per row (the first new token is predicted from the last prompt position), got [${batch}, 0]`);
  }
  if (options.inputsEmbeds && options.inputsEmbeds.dtype !== 'float32') throw new Error(`generate: expected inputsEmbeds of dtype float32, got ${options.inputsEmbeds.dtype}`);
  promptIds?.forEach((r, b) =>
    r.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= model.info.vocabSize) {
        throw new Error(`generate: expected token ids that are integers in [0, ${model.info.vocabSize}), got ${id} at inputIds[${b}][${i}]`);
      }
    }),
  );
  const mask = options.attentionMask ? toRows(options.attentionMask, 'attentionMask') : Array.from({ length: batch }, () => Array<number>(promptLength).fill(1));
  if (mask.length !== batch || mask[0]!.length !== promptLength) {
    throw new Error(`generate: attentionMask must be [${batch}, ${promptLength}], got [${mask.length}, ${mask[0]!.length}]`);
  }
  const blank = mask.findIndex((r) => !r.some((v) => v !== 0));
  if (blank >= 0) throw new Error(`generate: expected every row of attentionMask to have a real token (a 1), got only padding in row ${blank}`);
  if (model.maxPositions !== undefined && promptLength > model.maxPositions) {
    throw new Error(`generate: expected a prompt of at most ${model.maxPositions} positions (the LM's maxPositions), got ${promptLength}`);
  }
  const stop = new Set(options.stopTokenIds ?? []);
  const pad = options.padTokenId ?? model.info.padTokenId ?? model.info.eosTokenIds[0] ?? 0;
  const random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  const useCache = options.useCache ?? true;

  const newTokens: number[][] = Array.from({ length: batch }, () => []);
  const finished = Array<boolean>(batch).fill(false);
  const stepLogits: tf.Tensor[] = [];
  let past: KVCache | undefined;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      // (rows may stop early, so a long maxNewTokens is only an error once a step needs a position past the limit)
      if (model.maxPositions !== undefined && promptLength + step > model.maxPositions) {
        throw new Error(
          `generate: expected at most ${model.maxPositions} positions (the LM's maxPositions) to predict from, got ${promptLength} prompt + ${step} new = ${promptLength + step} for new token ${step + 1} of maxNewTokens ${maxNewTokens} (no stop token came before)`,
        );
      }
      const fresh = !useCache || step === 0; // a pass over the whole sequence so far
      const tokens = fresh ? promptLength + step : 1;
      const out: CausalLMOutput = tf.tidy(() => {
        const attentionMask = tf.tensor2d(mask, [batch, mask[0]!.length], 'int32');
        const generated = (n: number) => tf.tensor2d(newTokens.map((r) => r.slice(r.length - n)), [batch, n], 'int32');
        let input: { inputIds?: tf.Tensor; inputsEmbeds?: tf.Tensor };
        if (!fresh) input = { inputIds: generated(1) };
        else if (options.inputsEmbeds) {
          input = { inputsEmbeds: step === 0 ? options.inputsEmbeds : tf.concat([options.inputsEmbeds, model.embedTokens(generated(step))], 1) };
        } else {
          const rows = promptIds!.map((r, b) => [...r, ...newTokens[b]!]);
          input = { inputIds: tf.tensor2d(rows, [batch, tokens], 'int32') };
        }
        return model.forward({ ...input, attentionMask, pastKeyValues: fresh ? undefined : past, useCache, logitsToKeep: 1 }) as unknown as tf.TensorContainer;
      }) as unknown as CausalLMOutput;
      const last = tf.tidy(() => tf.reshape(out.logits, [batch, -1]));
      tf.dispose([out.logits, out.lastLayerOutput, out.lastHiddenState]);
      if (useCache) {
        disposeKVCache(past);
        past = out.pastKeyValues;
      }
      const values = last.dataSync();
      const vocab = last.shape[1]!;
      const chosen = finished.map((done, b) => (done ? pad : chooseToken(values.subarray(b * vocab, (b + 1) * vocab), options, random)));
      if (options.returnStepLogits) stepLogits.push(last);
      else last.dispose();
      chosen.forEach((t, b) => {
        newTokens[b]!.push(t);
        mask[b]!.push(1);
        if (stop.has(t)) finished[b] = true;
      });
      options.onToken?.({ step, tokens: chosen, finished: [...finished] });
      if (finished.every(Boolean)) break;
    }
  } catch (e) {
    tf.dispose(stepLogits);
    throw e;
  } finally {
    disposeKVCache(past);
  }
  const result: GenerateResult = {
    sequences: newTokens.map((t, b) => [...(promptIds ? promptIds[b]! : []), ...t]),
    newTokens,
  };
  if (options.returnStepLogits) {
    result.stepLogits = (stepLogits.length ? tf.stack(stepLogits, 1) : tf.zeros([batch, 0, model.info.vocabSize])) as tf.Tensor3D;
    tf.dispose(stepLogits);
  }
  return result;
}
