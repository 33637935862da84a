import * as tf from '@tensorflow/tfjs-core';
import { Embedding, Module, assertDtype, assertShape } from '@vlm/core';
import type { ResolvedQFormerArgs } from './config';

/**
 * BERT text embeddings without LayerNorm (Hugging Face `Blip2TextEmbeddings`):
 * `word_embeddings[ids] + position_embeddings[0..T-1]`. Text positions start at 0 whatever
 * the number of queries; the Q-Former's own `layernorm` is applied after the queries are
 * prepended. `word_embeddings` has `padding_idx = padTokenId` (that row gets no gradient, its
 * value is still used). State-dict keys `word_embeddings.weight` `[vocab, H]`,
 * `position_embeddings.weight` `[maxPositionEmbeddings, H]`.
 *
 * @example
 * ```ts
 * const emb = new QFormerTextEmbeddings(resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4, vocabSize: 50, maxPositionEmbeddings: 16 }));
 * emb.forward(tf.tensor2d([[5, 7, 0]], undefined, 'int32')).shape; // [1, 3, 32]
 * ```
 */
export class QFormerTextEmbeddings extends Module {
  /** Token table `[vocabSize, H]` with `padding_idx = padTokenId` (HF `word_embeddings`); also the tied ITG decoder weight. */
  readonly wordEmbeddings: Embedding;
  /** Absolute position table `[maxPositionEmbeddings, H]` (HF `position_embeddings`); text positions start at 0. */
  readonly positionEmbeddings: Embedding;

  constructor(args: ResolvedQFormerArgs) {
    super();
    const H = args.hiddenSize;
    this.wordEmbeddings = this.registerModule(
      'word_embeddings',
      new Embedding({ numEmbeddings: args.vocabSize, embeddingDim: H, paddingIdx: args.padTokenId }),
    );
    this.positionEmbeddings = this.registerModule(
      'position_embeddings',
      new Embedding({ numEmbeddings: args.maxPositionEmbeddings, embeddingDim: H }),
    );
  }

  /** int32 `[b, T]` → `[b, T, H]`. */
  forward(inputIds: tf.Tensor): tf.Tensor {
    assertDtype(inputIds, ['int32'], 'Q-Former inputIds');
    assertShape(inputIds, [null, null], 'Q-Former inputIds', ['batch', 'text']);
    const T = inputIds.shape[1]!;
    const maxPos = this.positionEmbeddings.numEmbeddings;
    if (T > maxPos) throw new Error(`Q-Former inputIds: expected at most maxPositionEmbeddings=${maxPos} tokens, got ${T}`);
    return tf.tidy(() => {
      const words = this.wordEmbeddings.forward(inputIds); // [b, T, H]
      const positions = this.positionEmbeddings.forward(tf.range(0, T, 1, 'int32')); // [T, H]
      return tf.add(words, positions);
    });
  }
}
