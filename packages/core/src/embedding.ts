import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { normal } from './initializers';
import { checkTokenIds, readbackChecksEnabled } from './readback-checks';
import { assertDtype } from './shape-checks';

/** Constructor arguments of {@link Embedding}. */
export interface EmbeddingArgs {
  /** Vocabulary size (rows). */
  numEmbeddings: number;
  /** Width of each row. */
  embeddingDim: number;
  /**
   * Row that receives no gradient, as `torch.nn.Embedding(padding_idx=…)`; its value is
   * still used by the forward pass. Default: none.
   */
  paddingIdx?: number;
}

/**
 * `torch.nn.Embedding`: a lookup table, state-dict key `weight` `[numEmbeddings, embeddingDim]`.
 *
 * The gradient is written here rather than left to `tf.gather`'s, whose kernel
 * (`UnsortedSegmentSum`) the wasm backend lacks; ids outside the table throw instead of
 * silently reading zeros.
 *
 * @example
 * ```ts
 * const emb = new Embedding({ numEmbeddings: 50, embeddingDim: 32, paddingIdx: 0 });
 * emb.forward(tf.tensor2d([[5, 7, 0]], undefined, 'int32')).shape; // [1, 3, 32]
 * ```
 */
export class Embedding extends Module {
  /** Number of rows (vocabulary size). */
  readonly numEmbeddings: number;
  /** Width of each row. */
  readonly embeddingDim: number;
  /** The row that gets no gradient, if any (`padding_idx`). */
  readonly paddingIdx: number | undefined;

  constructor(args: EmbeddingArgs) {
    super();
    this.numEmbeddings = args.numEmbeddings;
    this.embeddingDim = args.embeddingDim;
    this.paddingIdx = args.paddingIdx;
    const shape = [this.numEmbeddings, this.embeddingDim];
    const pad = this.paddingIdx;
    this.registerParameter('weight', { shape, init: () => (pad === undefined ? normal(shape) : tf.tidy(() => zeroRow(normal(shape), pad))) });
  }

  /** The table `[numEmbeddings, embeddingDim]`. */
  get weight(): tf.Variable {
    return this.parameter('weight');
  }

  /** int32 ids `[...]` → `[..., embeddingDim]`. */
  forward(ids: tf.Tensor): tf.Tensor {
    return embeddingLookup(this.weight, ids, this.paddingIdx);
  }
}

/**
 * Rows of `table` `[vocab, dim]` at int32 `ids` `[...]` → `[..., dim]`, with a gradient for
 * `table` that works on every backend and leaves row `paddingIdx` at zero. Throws when an id is
 * outside `[0, vocab)` (one read-back of the ids; not inside {@link withoutReadbackChecks}).
 */
export function embeddingLookup(table: tf.Tensor, ids: tf.Tensor, paddingIdx?: number): tf.Tensor {
  assertDtype(ids, ['int32'], 'Embedding ids');
  const [vocab, dim] = table.shape as [number, number];
  // one read-back of the ids (skipped inside withoutReadbackChecks: the caller checked them)
  if (ids.size > 0 && readbackChecksEnabled()) checkTokenIds(ids.dataSync(), vocab);
  // `ids` is saved for the backward pass: the caller may dispose it (a tidy) before gradients run.
  const lookup = tf.customGrad(((w: tf.Tensor, save: tf.GradSaveFunc) => {
    save([ids]);
    return {
      value: tf.reshape(tf.gather(w, tf.reshape(ids, [-1])), [...ids.shape, dim]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const dy2 = tf.reshape(dy, [-1, dim]);
        const flat = tf.reshape(saved[0]!, [-1]);
        const grad = tf.getKernel('UnsortedSegmentSum', tf.getBackend())
          ? tf.unsortedSegmentSum(dy2, flat as tf.Tensor1D, vocab)
          : segmentSumOnHost(dy2, flat, vocab);
        return paddingIdx === undefined ? grad : zeroRow(grad, paddingIdx);
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return tf.tidy(() => lookup(table));
}

// Row sums computed in JS, for backends without an UnsortedSegmentSum kernel (wasm).
function segmentSumOnHost(values: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  const dim = values.shape[1]!;
  const v = values.dataSync();
  const ids = segmentIds.dataSync();
  const out = new Float32Array(numSegments * dim);
  for (let r = 0; r < ids.length; r++) {
    const o = ids[r]! * dim;
    for (let c = 0; c < dim; c++) out[o + c]! += v[r * dim + c]!;
  }
  return tf.tensor2d(out, [numSegments, dim]);
}

function zeroRow(t: tf.Tensor, row: number): tf.Tensor {
  const keep = tf.reshape(tf.notEqual(tf.range(0, t.shape[0]!, 1, 'int32'), row), [-1, 1]);
  return tf.where(tf.broadcastTo(keep, t.shape), t, tf.zerosLike(t));
}
