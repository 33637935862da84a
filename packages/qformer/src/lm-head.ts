import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Linear, Module, assertShape, gelu, linear } from '@vlm/core';

/** Constructor arguments of {@link QFormerLmHead}. */
export interface QFormerLmHeadArgs {
  /** Q-Former width `H`. */
  hiddenSize: number;
  /** Vocabulary size `V` (rows of the tied word embeddings). */
  vocabSize: number;
  /** LayerNorm epsilon. Default: `1e-12`. */
  layerNormEps?: number;
}

/**
 * BERT's prediction-head transform (`BertPredictionHeadTransform`): `LayerNorm(gelu(dense(h)))`.
 * State-dict keys `dense.{weight,bias}` `[H, H]`, `LayerNorm.{weight,bias}` `[H]`.
 *
 * @example
 * ```ts
 * new QFormerPredictionHeadTransform({ hiddenSize: 32, vocabSize: 50 }).forward(tf.zeros([2, 7, 32])).shape; // [2, 7, 32]
 * ```
 */
export class QFormerPredictionHeadTransform extends Module {
  /** Linear `H → H` before the GELU (HF `dense`, weight `[H, H]`). */
  readonly dense: Linear;
  /** LayerNorm over `H` after the GELU, eps `layerNormEps` (default `1e-12`) (HF `LayerNorm`). */
  readonly LayerNorm: LayerNorm;

  constructor(args: QFormerLmHeadArgs) {
    super();
    const H = args.hiddenSize;
    this.dense = this.registerModule('dense', new Linear({ inFeatures: H, outFeatures: H }));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm({ dim: H, eps: args.layerNormEps ?? 1e-12 }));
  }

  /** `[..., H] → [..., H]`. */
  forward(h: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.LayerNorm.forward(gelu(this.dense.forward(h))));
  }
}

/**
 * BERT's LM prediction head (`BertLMPredictionHead`): `transform(h) · Wᵀ + bias`, where the
 * decoder weight `W` `[V, H]` is tied to the Q-Former's word embeddings (passed to
 * {@link QFormerLmPredictionHead.forward}) and `bias` `[V]` is the head's own. State-dict keys
 * `transform.*`, `bias`.
 *
 * @example
 * ```ts
 * const head = new QFormerLmPredictionHead({ hiddenSize: 32, vocabSize: 50 });
 * head.forward(tf.zeros([2, 7, 32]), tf.zeros([50, 32])).shape; // [2, 7, 50]
 * ```
 */
export class QFormerLmPredictionHead extends Module {
  /** The dense + GELU + LayerNorm transform applied before the tied decoder (HF `transform`, keys `transform.*`). */
  readonly transform: QFormerPredictionHeadTransform;
  /** Vocabulary size `V`: rows of the tied decoder weight and length of `bias`. */
  readonly vocabSize: number;

  constructor(args: QFormerLmHeadArgs) {
    super();
    this.vocabSize = args.vocabSize;
    this.transform = this.registerModule('transform', new QFormerPredictionHeadTransform(args));
    this.registerParameter('bias', { shape: [args.vocabSize], init: () => tf.zeros([args.vocabSize]) });
  }

  /**
   * @param h `[b, T, H]`
   * @param decoderWeight the tied word embeddings `[V, H]`
   * @returns logits `[b, T, V]`
   */
  forward(h: tf.Tensor, decoderWeight: tf.Tensor): tf.Tensor {
    assertShape(decoderWeight, [this.vocabSize, h.shape[h.rank - 1]!], 'LM head decoder weight', ['vocab', 'hidden']);
    return tf.tidy(() => linear(this.transform.forward(h), tf.transpose(decoderWeight), this.parameter('bias')));
  }
}

/**
 * The ITG text decoder head, as LAVIS' `Qformer.cls` (`BertOnlyMLMHead`): a
 * {@link QFormerLmPredictionHead} under `predictions`, so its keys are
 * `predictions.transform.dense.*`, `predictions.transform.LayerNorm.*`, `predictions.bias`.
 *
 * @example
 * ```ts
 * const cls = new QFormerLmHead({ hiddenSize: 32, vocabSize: 50 });
 * cls.forward(tf.zeros([2, 7, 32]), qformer.embeddings!.wordEmbeddings.weight).shape; // [2, 7, 50]
 * ```
 */
export class QFormerLmHead extends Module {
  /** The LM prediction head (HF `BertLMPredictionHead`, keys `predictions.*`). */
  readonly predictions: QFormerLmPredictionHead;

  constructor(args: QFormerLmHeadArgs) {
    super();
    this.predictions = this.registerModule('predictions', new QFormerLmPredictionHead(args));
  }

  /** `[b, T, H]` and the tied word embeddings `[V, H]` → logits `[b, T, V]`. */
  forward(h: tf.Tensor, decoderWeight: tf.Tensor): tf.Tensor {
    return this.predictions.forward(h, decoderWeight);
  }
}
