import * as tf from '@tensorflow/tfjs-core';
import {
  Module,
  assertDtype,
  assertShape,
  checkDecoderArgs,
  checkTokenIds,
  freeze,
  generateGreedy,
  generateGreedyAsync,
  runDecoder,
  withoutReadbackChecks,
  type AsyncGenerationForward,
  type DecoderForwardArgs,
  type DecoderLM,
  type DecoderOutput,
  type GreedyGenerationArgs,
  type GreedyGenerationOutput,
  type KVCache,
} from '@vlm/core';
import { GatedCrossAttentionBlock, type BlockGateValues } from './gated-cross-attention-block';
import { checkMediaCount, mediaAttentionMask, mediaLocationsFromIds, textTime, type MediaMask } from './media-locations';

/**
 * The decoder layers that get a gated block in front of them, by OpenFlamingo's convention:
 * layer `i` (0-based) has one iff `(i + 1) % crossAttnEveryNLayers == 0`.
 *
 * @example
 * ```ts
 * crossAttentionLayerIndices(4, 1); // [0, 1, 2, 3]
 * crossAttentionLayerIndices(4, 2); // [1, 3]
 * crossAttentionLayerIndices(3, 2); // [1]
 * ```
 */
export function crossAttentionLayerIndices(numLayers: number, crossAttnEveryNLayers: number): number[] {
  if (!Number.isInteger(crossAttnEveryNLayers) || crossAttnEveryNLayers < 1) {
    throw new Error(`crossAttnEveryNLayers: expected a positive integer, got ${crossAttnEveryNLayers}`);
  }
  return Array.from({ length: numLayers }, (_, i) => i).filter((i) => (i + 1) % crossAttnEveryNLayers === 0);
}

/** Constructor arguments of {@link FlamingoLM}. */
export interface FlamingoLMArgs {
  /** The decoder LM to condition. It is frozen (unless `freezeLM` is false) and NOT owned: {@link FlamingoLM.dispose} leaves it alone. */
  lm: DecoderLM;
  /** Width of the visual tokens (the resampler's output width). */
  dimVisual: number;
  /** A block goes before decoder layer `i` iff `(i + 1) % crossAttnEveryNLayers == 0`. Default: `1` (every layer). */
  crossAttnEveryNLayers?: number;
  /** Width of each cross-attention head. Default: `64`. */
  dimHead?: number;
  /** Number of cross-attention heads. Default: `8`. */
  heads?: number;
  /** Feed-forward width multiple of the blocks. Default: `4`. */
  ffMult?: number;
  /** See {@link GatedCrossAttentionBlockArgs.onlyAttendImmediateMedia}. Default: `true`. */
  onlyAttendImmediateMedia?: boolean;
  /** Id of the `<image>` token, to find media locations in `inputIds`. Default: none (pass `mediaLocations`). */
  mediaTokenId?: number;
  /** Freeze every weight of `lm`. Default: `true`. */
  freezeLM?: boolean;
}

/** A {@link FlamingoLM}'s cache: the LM's, plus the media and how far each row has got in it. */
export interface FlamingoKVCache extends KVCache {
  /** The visual tokens `[batch, T, m, dimVisual]` the cached positions were conditioned on. */
  media: tf.Tensor;
  /** int32 `[batch]`: the text time of the last cached token (images seen so far per row). */
  mediaTime: tf.Tensor;
}

/** Arguments of {@link FlamingoLM.forward}: those of a `DecoderLM` (@vlm/core), plus the visual conditioning. */
export interface FlamingoForwardArgs extends DecoderForwardArgs {
  /**
   * Visual tokens `[batch, T, m, dimVisual]` (e.g. a resampler's output). Default: the media of
   * `pastKeyValues`.
   */
  media?: tf.Tensor;
  /**
   * `[batch, queries]`, non-zero at `<image>` tokens. Default: `inputIds == mediaTokenId`.
   */
  mediaLocations?: tf.Tensor;
  /** The cache of the earlier positions (from a forward with `useCache`). */
  pastKeyValues?: FlamingoKVCache;
}

/** What {@link FlamingoLM.forward} returns. */
export interface FlamingoOutput extends DecoderOutput {
  /** With `useCache`: the cache including these positions (pass it to the next step). */
  pastKeyValues?: FlamingoKVCache;
}

/** Arguments of {@link FlamingoLM.generate}. */
export interface FlamingoGenerationArgs extends GreedyGenerationArgs {
  /** Visual tokens `[batch, T, m, dimVisual]`. */
  media: tf.Tensor;
}

/** What {@link FlamingoLM.gateContributions} returns for the block in front of decoder layer `layer`. */
export interface LayerGateContributions {
  /** The decoder layer (0-based) the block runs before. */
  layer: number;
  /** ‖tanh(attn_gate)·attn(x)‖ / ‖x‖ per token `[batch, tokens]`. */
  attn: tf.Tensor2D;
  /** ‖tanh(ff_gate)·ff(h)‖ / ‖h‖ per token `[batch, tokens]`. */
  ff: tf.Tensor2D;
}

/** `tanh` of the gates of the block in front of decoder layer `layer`. */
export interface LayerGateValues extends BlockGateValues {
  /** The decoder layer (0-based) the block runs before. */
  layer: number;
}

// Holds the blocks under their decoder-layer index (`gated_cross_attn_layers.{i}`), with holes.
class LayerIndexedBlocks extends Module {
  constructor(blocks: ReadonlyMap<number, GatedCrossAttentionBlock>) {
    super();
    for (const [i, block] of blocks) this.registerModule(String(i), block);
  }
}

/**
 * Flamingo's language side: a frozen decoder LM with {@link GatedCrossAttentionBlock}s inserted
 * in front of its layers (OpenFlamingo's `FlamingoLMMixin`). A block runs on the hidden states
 * entering decoder layer `i` iff `(i + 1) % crossAttnEveryNLayers == 0` (see
 * {@link crossAttentionLayerIndices}); embeddings, final norm and LM head are the LM's own.
 *
 * Each forward pass conditions once: it finds the media locations (`<image>` tokens), computes
 * the text time and the media mask, checks them against the media, and every block reuses
 * that mask. With a KV cache, the new tokens continue the text time of the cached ones, so a
 * generated token attends to the last image (OpenFlamingo's `use_cached_media`), and cached
 * generation equals recomputing the whole sequence.
 *
 * With all gates at 0 (a new model) the logits equal the bare LM's bit for bit. The state dict
 * holds only the blocks, under `gated_cross_attn_layers.{i}.…` (`i` = decoder layer), the names
 * of OpenFlamingo's `lang_encoder.gated_cross_attn_layers.{i}.…`; these are the trainable weights.
 *
 * @example
 * ```ts
 * const flamingo = new FlamingoLM({ lm, dimVisual: 32, crossAttnEveryNLayers: 2, dimHead: 8, heads: 4, mediaTokenId: 97 });
 * const media = resampler.forward(pixelsFeatures);             // [batch, T, 64, 32]
 * const { logits } = flamingo.forward({ inputIds, attentionMask, media }); // [batch, tokens, vocab]
 * const { sequences } = flamingo.generate({ inputIds, attentionMask, media, maxNewTokens: 6 });
 * flamingo.gateValues();  // [{ layer: 1, attn: 0, ff: 0 }, { layer: 3, attn: 0, ff: 0 }]
 * ```
 */
export class FlamingoLM extends Module {
  /** The wrapped decoder. */
  readonly lm: DecoderLM;
  /** Visual token width. */
  readonly dimVisual: number;
  /** Block frequency. */
  readonly crossAttnEveryNLayers: number;
  /** Immediate-media (true) or all-previous-media (false) masking, for every block. */
  readonly onlyAttendImmediateMedia: boolean;
  /** The `<image>` token id, if given. */
  readonly mediaTokenId: number | undefined;
  /** The blocks by the decoder layer they run before. */
  readonly blocks: ReadonlyMap<number, GatedCrossAttentionBlock>;

  constructor(args: FlamingoLMArgs) {
    super();
    this.lm = args.lm;
    this.dimVisual = args.dimVisual;
    this.crossAttnEveryNLayers = args.crossAttnEveryNLayers ?? 1;
    this.onlyAttendImmediateMedia = args.onlyAttendImmediateMedia ?? true;
    this.mediaTokenId = args.mediaTokenId;
    const blocks = new Map<number, GatedCrossAttentionBlock>();
    for (const i of crossAttentionLayerIndices(this.lm.numLayers, this.crossAttnEveryNLayers)) {
      blocks.set(
        i,
        new GatedCrossAttentionBlock({
          dim: this.lm.hiddenSize,
          dimVisual: this.dimVisual,
          dimHead: args.dimHead,
          heads: args.heads,
          ffMult: args.ffMult,
          onlyAttendImmediateMedia: this.onlyAttendImmediateMedia,
        }),
      );
    }
    this.blocks = blocks;
    this.registerModule('gated_cross_attn_layers', new LayerIndexedBlocks(blocks));
    if (args.freezeLM ?? true) freeze(this.lm);
  }

  /**
   * The LM's forward with visual conditioning.
   * @returns logits `[batch, queries, vocabSize]` and, with `useCache`, a {@link FlamingoKVCache}.
   */
  forward(args: FlamingoForwardArgs): FlamingoOutput {
    return this.conditionedForward(args, (block, hidden, media, mask) => block.forwardWithOptions(hidden, media, { mask }));
  }

  /**
   * Gate analysis beyond `tanh(α)`: runs {@link FlamingoLM.forward} on `args` and returns, for
   * every block, how large its gated updates are against the hidden states they are added to,
   * per token: `attn` = ‖tanh(attn_gate)·attn(x)‖ / ‖x‖ and `ff` = ‖tanh(ff_gate)·ff(h)‖ / ‖h‖
   * (`h = x + attn`), each `[batch, tokens]` (0 where a norm is 0). The hidden states' scale
   * differs between layers (a GPT-2's first layer sees the embeddings, ~1; later ones tens), so
   * a small `tanh(α)` in front of a large update can change a layer as much as a large one
   * elsewhere. The caller disposes the tensors.
   *
   * @example
   * ```ts
   * const c = flamingo.gateContributions({ inputIds, media });
   * c.map((l) => [l.layer, l.attn.mean().dataSync()[0], l.ff.mean().dataSync()[0]]);
   * ```
   */
  gateContributions(args: Omit<FlamingoForwardArgs, 'useCache' | 'pastKeyValues'>): LayerGateContributions[] {
    const found: LayerGateContributions[] = [];
    const ratio = (update: tf.Tensor, base: tf.Tensor) => tf.divNoNan(tf.norm(update, 'euclidean', -1), tf.norm(base, 'euclidean', -1)) as tf.Tensor2D;
    try {
      const out = this.conditionedForward({ ...args, useCache: false }, (block, hidden, media, mask, layer) => {
        const u = block.residualUpdates(hidden, media, { mask });
        found.push({ layer, attn: tf.keep(ratio(u.attn, hidden)), ff: tf.keep(ratio(u.ff, u.afterAttn)) });
        tf.dispose([u.attn, u.afterAttn, u.ff]);
        return u.output;
      });
      tf.dispose(out as unknown as tf.TensorContainer);
      return found;
    } catch (e) {
      tf.dispose(found.flatMap((c) => [c.attn, c.ff]));
      throw e;
    }
  }

  /** {@link FlamingoLM.forward}'s checks and conditioning, with `runBlock` in front of the decoder layers that have a block. */
  private conditionedForward(
    args: FlamingoForwardArgs,
    runBlock: (block: GatedCrossAttentionBlock, hidden: tf.Tensor, media: tf.Tensor, mask: MediaMask, layer: number) => tf.Tensor,
  ): FlamingoOutput {
    const past = args.pastKeyValues;
    const media = args.media ?? past?.media;
    if (!media) throw new Error('FlamingoLM.forward: expected media [batch, T, m, dimVisual] (or a pastKeyValues that holds it), got none');
    assertShape(media, [null, null, null, this.dimVisual], 'FlamingoLM media', ['batch', 'T', 'm', 'dimVisual']);
    assertDtype(media, ['float32'], 'FlamingoLM media');
    // the text input's shape first (a rank-2 inputsEmbeds is a shape error, not a media-locations one)
    const [b, t] = checkDecoderArgs(this.lm, args, 'FlamingoLM.forward');
    if (media.shape[0] !== b) throw new Error(`FlamingoLM media: expected shape [batch=${b}, T, m, dimVisual=${this.dimVisual}], got [${media.shape.join(', ')}]`);
    if (!args.mediaLocations && (!args.inputIds || this.mediaTokenId === undefined)) {
      throw new Error('FlamingoLM.forward: expected mediaLocations [batch, queries], or inputIds with a mediaTokenId set');
    }
    if (args.mediaLocations) assertShape(args.mediaLocations, [b, t], 'FlamingoLM mediaLocations', ['batch', 'queries']);
    return tf.tidy(() => {
      // Condition once per pass: text time (continuing the cache's) and the media mask.
      const locations = args.mediaLocations ?? mediaLocationsFromIds(args.inputIds!, this.mediaTokenId!);
      const time = textTime(locations, { offset: past?.mediaTime });
      const mask = mediaAttentionMask(time, media.shape, this.onlyAttendImmediateMedia);
      const out = runDecoder(this.lm, args, {
        beforeLayer: (i, hidden) => {
          const block = this.blocks.get(i);
          return block ? runBlock(block, hidden, media, mask, i) : hidden;
        },
      });
      if (!out.pastKeyValues) return out as unknown as tf.TensorContainer;
      const cache: FlamingoKVCache = {
        ...out.pastKeyValues,
        media: tf.clone(media),
        mediaTime: t > 0 ? tf.reshape(tf.slice(time, [0, t - 1], [b, 1]), [b]) : (past ? tf.clone(past.mediaTime) : tf.zeros([b], 'int32')),
      };
      return { ...out, pastKeyValues: cache } as unknown as tf.TensorContainer;
    }) as unknown as FlamingoOutput;
  }

  /**
   * Greedy generation conditioned on `media` (OpenFlamingo's `generate` with `num_beams=1`,
   * `do_sample=False`), with a KV cache: generated tokens attend to the last image.
   * @returns the prompt plus generated ids `[batch, promptLength + generated]` and the logits of each step.
   */
  generate(args: FlamingoGenerationArgs): GreedyGenerationOutput {
    const { media, ...rest } = args;
    return generateGreedy<FlamingoKVCache>((a) => this.forward({ ...a, media }), rest);
  }

  /**
   * {@link FlamingoLM.generate} without synchronous read-backs (`generateGreedyAsync` of
   * `@vlm/core`): the same tokens and logits, each step's ids read with `await`. The prompt's
   * ids are checked on the host (range, `<image>` count against the media), and the forwards
   * run in `withoutReadbackChecks`, so nothing stalls the GPU; this is how to generate on WebGPU.
   * @returns the prompt plus generated ids `[batch, promptLength + generated]` and the logits of each step (the caller's).
   *
   * @example
   * ```ts
   * const { sequences, stepLogits } = await flamingo.generateAsync({ inputIds, attentionMask, media, maxNewTokens: 6 });
   * const rows = await sequences.array();
   * tf.dispose([sequences, stepLogits]);
   * ```
   */
  generateAsync(args: FlamingoGenerationArgs): Promise<GreedyGenerationOutput> {
    const { media, ...rest } = args;
    return generateGreedyAsync(this.generationForward(media, undefined, 'FlamingoLM.generateAsync'), rest);
  }

  /**
   * The forward that {@link FlamingoLM.generateAsync} hands to `generateGreedyAsync` (`@vlm/core`),
   * for wrappers that generate with their own settings: it checks each call's ids on the host
   * (in `[0, vocabSize)`; `<image>` markers so far per row at most `T` of `media`, see
   * {@link checkMediaCount}), runs {@link FlamingoLM.forward} on `media` in
   * `withoutReadbackChecks`, and passes the logits through `adjustLogits` (e.g. a penalty)
   * when given (the forward's logits are disposed).
   *
   * @example
   * ```ts
   * const out = await generateGreedyAsync(flamingo.generationForward(media, (l) => tf.mul(l, 0.5)), { inputIds, maxNewTokens: 4 });
   * ```
   */
  generationForward(media: tf.Tensor, adjustLogits?: (logits: tf.Tensor) => tf.Tensor, what = 'FlamingoLM.generationForward'): AsyncGenerationForward<FlamingoKVCache> {
    let images: number[] = [];
    return (a, ids) => {
      checkTokenIds(ids, this.lm.vocabSize, `${what} inputIds`);
      if (this.mediaTokenId !== undefined) {
        const added = ids.map((row) => row.filter((v) => v === this.mediaTokenId).length);
        // with a cache the new ids continue the cached text time; without, each call sees the whole sequence
        images = a.pastKeyValues ? added.map((n, r) => n + (images[r] ?? 0)) : added;
        checkMediaCount(images, media.shape, `${what}: <image> markers in the ids so far`);
      }
      const o = withoutReadbackChecks(() => this.forward({ ...a, media }));
      if (!adjustLogits) return o;
      const logits = tf.tidy(() => adjustLogits(o.logits));
      o.logits.dispose();
      return { ...o, logits };
    };
  }

  /** `tanh` of both gates of every block, in decoder-layer order (for gate analysis plots). */
  gateValues(): LayerGateValues[] {
    return [...this.blocks.entries()].sort(([a], [b]) => a - b).map(([layer, block]) => ({ layer, ...block.gateValues() }));
  }

  /**
   * {@link FlamingoLM.gateValues} read with one `await` (no synchronous read-back: for WebGPU,
   * or a training loop's callback).
   *
   * @example
   * ```ts
   * await flamingo.gateValuesAsync(); // [{ layer: 1, attn: 0, ff: 0 }, { layer: 3, attn: 0, ff: 0 }]
   * ```
   */
  async gateValuesAsync(): Promise<LayerGateValues[]> {
    const layers = [...this.blocks.keys()].sort((a, b) => a - b);
    if (layers.length === 0) return [];
    const t = tf.tidy(() => tf.tanh(tf.concat(layers.flatMap((i) => [this.blocks.get(i)!.attnGate, this.blocks.get(i)!.ffGate]))));
    try {
      const v = await t.data();
      return layers.map((layer, k) => ({ layer, attn: v[2 * k]!, ff: v[2 * k + 1]! }));
    } finally {
      t.dispose();
    }
  }
}

/**
 * Inserts gated cross-attention blocks into a frozen decoder LM: `new FlamingoLM({ lm, ...args })`.
 *
 * @example
 * ```ts
 * const flamingo = insertGatedCrossAttention(lm, { dimVisual: 1024, crossAttnEveryNLayers: 4, mediaTokenId });
 * [...flamingo.blocks.keys()]; // [3, 7, 11, ...]  for a 24-layer LM
 * ```
 */
export function insertGatedCrossAttention(lm: DecoderLM, args: Omit<FlamingoLMArgs, 'lm'>): FlamingoLM {
  return new FlamingoLM({ ...args, lm });
}
