import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, assertDtype, assertShape, causalLmLoss, crossEntropy } from '@vlm/core';
import type { QFormerArgs } from './config';
import type { QFormerInputs } from './qformer';
import { QFormer } from './qformer';
import { QFormerLmHead } from './lm-head';
import { itcLoss } from './itc';
import { sampleHardNegatives } from './itm';
import { itgDecoderInputs } from './itg';

/** Constructor arguments of {@link QFormerStage1}: the {@link QFormerArgs} plus the objective heads. */
export interface QFormerStage1Args extends QFormerArgs {
  /** Width of the shared ITC space (`vision_proj`, `text_proj`). Default: `256`. */
  embedDim?: number;
  /** Initial ITC temperature (learnable, clamped to [0.001, 0.5] before every step). Default: `0.07`. */
  temperature?: number;
  /** ITG decoder start token (LAVIS' `[DEC]`, the last row of its vocabulary). Default: `vocabSize - 1`. */
  decoderStartTokenId?: number;
  /** ITC label smoothing. Default: `0.1` (LAVIS). */
  itcLabelSmoothing?: number;
  /** ITG label smoothing. Default: `0.1` (LAVIS' BertLMHeadModel). */
  itgLabelSmoothing?: number;
  /**
   * Seed of the ITM hard-negative sampling when a call passes none: call `k` (0-based) uses
   * `seed + k`. Default: `0`.
   */
  seed?: number;
}

/** Inputs of {@link QFormerStage1.losses}. */
export interface QFormerStage1Inputs {
  /** Frozen vision features `[b, M, E]`, `b >= 2` (in-batch negatives). */
  imageEmbeds: tf.Tensor;
  /** The matching captions, int32 `[b, T]`, BERT-tokenized with `[CLS]` first (its output is the ITC text feature). */
  inputIds: tf.Tensor;
  /** `[b, T]`, 1 = real token, 0 = padding. Default: all real. */
  attentionMask?: tf.Tensor;
  /** Seed of this call's ITM hard-negative sampling (see {@link QFormerStage1Args.seed}). */
  seed?: number;
  /**
   * `imageEmbeds` holds this many frames, each read by its own copy of the queries (see
   * {@link QFormerInputs.numFrames}): ITC takes the best of all `numFrames · Q` query outputs,
   * ITM averages its head over all of them, ITG's text sees all of them. Default: `1`.
   */
  numFrames?: number;
  /** With `numFrames`: the queries are split among the frames ({@link QFormerInputs.splitQueries}). Default: `false`. */
  splitQueries?: boolean;
}

/** The three stage-1 losses and their sum: scalars owned by the caller. */
export interface QFormerStage1Losses {
  /** Image-text contrastive loss. */
  itc: tf.Scalar;
  /** Image-text matching loss (1 positive, 2 hard negatives per pair). */
  itm: tf.Scalar;
  /** Image-grounded text generation loss. */
  itg: tf.Scalar;
  /** `itc + itm + itg`. */
  total: tf.Scalar;
}

/**
 * BLIP-2 stage 1, vision-language representation learning against a frozen image encoder, with
 * the three objectives of LAVIS' `blip2_qformer.py` (single device):
 *
 * - **ITC**: `vision_proj` of the query outputs and `text_proj` of the text `[CLS]` output
 *   (one `'itc'`-mode pass: queries and text cannot see each other), L2-normalised;
 *   similarity = max over queries; divided by the learnable temperature `temp` (0.07, clamped to
 *   [0.001, 0.5] before each call, as LAVIS clamps it in place); in-batch cross-entropy both ways.
 * - **ITM**: one hard negative text per image and one hard negative image per text, sampled from
 *   the ITC similarities ({@link sampleHardNegatives}, seeded); an `'itm'`-mode pass over the
 *   `[positives; (image, negative text); (negative image, text)]` batch; `itm_head` on each query
 *   output, averaged over queries; 2-way cross-entropy (1 = match).
 * - **ITG**: the caption with `[DEC]` replacing its first token, an `'itg'`-mode pass (text sees all
 *   queries and earlier text), the BERT LM head `cls` with its decoder tied to the word
 *   embeddings, shifted causal LM loss with padding ignored.
 *
 * State-dict keys: `qformer.*` (the {@link QFormer}, with its text branch), `vision_proj.*`,
 * `text_proj.*`, `itm_head.*`, `temp`, `cls.predictions.{transform.dense,transform.LayerNorm,bias}`
 * (LAVIS names, without its `Qformer.bert.` level). Dropout is the identity.
 *
 * @example
 * ```ts
 * const model = new QFormerStage1({ hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64,
 *   encoderHiddenSize: 24, numQueryTokens: 8, vocabSize: 50, maxPositionEmbeddings: 16, embedDim: 16 });
 * const optimizer = tf.train.adam(1e-4);
 * optimizer.minimize(() => {
 *   const { total } = model.losses({ imageEmbeds, inputIds, attentionMask }); // imageEmbeds [4, 17, 24], inputIds [4, 7]
 *   return total;
 * });
 * ```
 */
export class QFormerStage1 extends Module {
  /** The Q-Former, always built with its text branch (keys `qformer.*`). */
  readonly qformer: QFormer;
  /** ITC projection of each query output, `H → embedDim` (LAVIS `vision_proj`). */
  readonly visionProj: Linear;
  /** ITC projection of the text `[CLS]` output, `H → embedDim` (LAVIS `text_proj`). */
  readonly textProj: Linear;
  /** ITM classifier `H → 2` on each query output, logits averaged over queries; class 1 = match (LAVIS `itm_head`). */
  readonly itmHead: Linear;
  /** ITG LM head, its decoder tied to the Q-Former's word embeddings (LAVIS `Qformer.cls`). */
  readonly cls: QFormerLmHead;
  /** The id that replaces each caption's first token for ITG (LAVIS' `[DEC]`). Default: `vocabSize - 1`. */
  readonly decoderStartTokenId: number;
  /** Label smoothing of the ITC cross-entropy. Default: `0.1`. */
  readonly itcLabelSmoothing: number;
  /** Label smoothing of the ITG causal LM loss. Default: `0.1`. */
  readonly itgLabelSmoothing: number;
  /** Base seed of the ITM hard-negative sampling: call `k` of {@link QFormerStage1.losses} (0-based) uses `seed + k` unless it passes its own. Default: `0`. */
  readonly seed: number;
  private calls = 0;

  constructor(args: QFormerStage1Args = {}) {
    super();
    const { embedDim = 256, temperature = 0.07, decoderStartTokenId, itcLabelSmoothing = 0.1, itgLabelSmoothing = 0.1, seed = 0, ...qArgs } = args;
    if (qArgs.useTextInput === false) throw new Error('QFormerStage1: the objectives need the text branch (useTextInput: true)');
    this.qformer = this.registerModule('qformer', new QFormer({ ...qArgs, useTextInput: true }));
    const { hiddenSize: H, vocabSize: V, layerNormEps } = this.qformer.args;
    this.visionProj = this.registerModule('vision_proj', new Linear({ inFeatures: H, outFeatures: embedDim }));
    this.textProj = this.registerModule('text_proj', new Linear({ inFeatures: H, outFeatures: embedDim }));
    this.itmHead = this.registerModule('itm_head', new Linear({ inFeatures: H, outFeatures: 2 }));
    this.registerParameter('temp', tf.scalar(temperature));
    this.cls = this.registerModule('cls', new QFormerLmHead({ hiddenSize: H, vocabSize: V, layerNormEps }));
    this.decoderStartTokenId = decoderStartTokenId ?? V - 1;
    if (!Number.isInteger(this.decoderStartTokenId) || this.decoderStartTokenId < 0 || this.decoderStartTokenId >= V) {
      throw new Error(`QFormerStage1: decoderStartTokenId must be in [0, ${V}), got ${this.decoderStartTokenId}`);
    }
    this.itcLabelSmoothing = itcLabelSmoothing;
    this.itgLabelSmoothing = itgLabelSmoothing;
    this.seed = seed;
  }

  /** The learnable ITC temperature (a scalar variable). */
  get temperature(): tf.Variable {
    return this.parameter('temp');
  }

  /**
   * The three stage-1 losses on one batch, and their sum (differentiable: call it inside
   * `optimizer.minimize` or `tf.variableGrads`). Clamps the temperature to [0.001, 0.5] first.
   */
  losses(inputs: QFormerStage1Inputs): QFormerStage1Losses {
    const { imageEmbeds, inputIds, attentionMask, numFrames = 1, splitQueries = false } = inputs;
    const { hiddenSize: H, encoderHiddenSize: E, padTokenId } = this.qformer.args;
    assertShape(imageEmbeds, [null, null, E], 'QFormerStage1 imageEmbeds', ['batch', 'tokens', 'encoderHiddenSize']);
    const [b, M] = imageEmbeds.shape as [number, number, number];
    assertDtype(inputIds, ['int32'], 'QFormerStage1 inputIds');
    assertShape(inputIds, [b, null], 'QFormerStage1 inputIds', ['batch', 'text']);
    const T = inputIds.shape[1]!;
    if (attentionMask) assertShape(attentionMask, [b, T], 'QFormerStage1 attentionMask', ['batch', 'text']);
    if (b < 2) throw new Error(`QFormerStage1: in-batch ITC/ITM need a batch of at least 2, got ${b}`);
    if (T < 2) throw new Error(`QFormerStage1: ITG needs texts of at least 2 tokens, got ${T}`);
    if (!Number.isInteger(numFrames) || numFrames < 1 || M % numFrames !== 0) {
      throw new Error(`QFormerStage1: numFrames must be a positive integer that divides the ${M} image tokens, got ${numFrames}`);
    }
    const Q = this.qformer.numQueryPositions(numFrames, splitQueries);
    const seed = inputs.seed ?? this.seed + this.calls;
    this.calls += 1;
    const temp = this.temperature;
    tf.tidy(() => temp.assign(tf.clipByValue(temp, 0.001, 0.5)));

    return tf.tidy(() => {
      const mask = attentionMask ? tf.cast(tf.notEqual(attentionMask, 0), 'int32') : tf.ones([b, T], 'int32');

      // ITC: queries and text in one pass, neither sees the other.
      const itcOut = this.qformer.encode({ imageEmbeds, inputIds, attentionMask: mask, mode: 'itc', numFrames, splitQueries }).lastHiddenState; // [b, Q+T, H]
      const imageFeats = this.visionProj.forward(tf.slice(itcOut, [0, 0, 0], [b, Q, H])); // [b, Q, D]
      const textFeat = this.textProj.forward(tf.reshape(tf.slice(itcOut, [0, Q, 0], [b, 1, H]), [b, H])); // [b, D] from [CLS]
      const { loss: itc, logits } = itcLoss(imageFeats, textFeat, temp, { labelSmoothing: this.itcLabelSmoothing });

      // ITM: [positives; (image, hard negative text); (hard negative image, text)].
      const { negativeTextForImage, negativeImageForText } = sampleHardNegatives(logits.arraySync() as number[][], seed);
      const negTextIdx = tf.tensor1d(negativeTextForImage, 'int32');
      const idsAll = tf.concat([inputIds, inputIds, tf.gather(inputIds, negTextIdx)], 0); // [3b, T]
      const maskAll = tf.concat([mask, mask, tf.gather(mask, negTextIdx)], 0); // [3b, T]
      const negImages = tf.reshape(tf.matMul(oneHotRows(negativeImageForText, b), tf.reshape(imageEmbeds, [b, M * E])), [b, M, E]);
      const imagesAll = tf.concat([imageEmbeds, negImages, imageEmbeds], 0); // [3b, M, E]
      const itmOut = this.qformer.encode({ imageEmbeds: imagesAll, inputIds: idsAll, attentionMask: maskAll, mode: 'itm', numFrames, splitQueries }).lastHiddenState;
      const itmLogits = tf.mean(this.itmHead.forward(tf.slice(itmOut, [0, 0, 0], [3 * b, Q, H])), 1); // [3b, 2]
      const itmLabels = Array.from({ length: 3 * b }, (_, i) => (i < b ? 1 : 0));
      const itm = crossEntropy(itmLogits, itmLabels);

      // ITG: [DEC] + caption, text sees all queries and earlier text; LM head tied to the word embeddings.
      const dec = itgDecoderInputs(inputIds, mask, { decoderStartTokenId: this.decoderStartTokenId, padTokenId });
      const itgOut = this.qformer.encode({ imageEmbeds, inputIds: dec.inputIds, attentionMask: mask, mode: 'itg', numFrames, splitQueries }).lastHiddenState;
      const lmLogits = this.cls.forward(tf.slice(itgOut, [0, Q, 0], [b, T, H]), this.qformer.embeddings!.wordEmbeddings.weight); // [b, T, V]
      const itg = causalLmLoss(lmLogits, dec.labels, { labelSmoothing: this.itgLabelSmoothing });

      const total = tf.addN([itc, itm, itg]) as tf.Scalar;
      return { itc, itm, itg, total } as unknown as tf.TensorContainer;
    }) as unknown as QFormerStage1Losses;
  }
}

/** `[n, b]` float one-hot rows: row `r` picks batch element `idx[r]` (a matMul gather that differentiates on every backend). */
function oneHotRows(idx: readonly number[], b: number): tf.Tensor2D {
  const data = new Float32Array(idx.length * b);
  idx.forEach((k, r) => (data[r * b + k] = 1));
  return tf.tensor2d(data, [idx.length, b]);
}
