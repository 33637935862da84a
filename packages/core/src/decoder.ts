import * as tf from '@tensorflow/tfjs-core';
import type { Module } from './module';
import { causalMask } from './masks';
import { assertDtype, assertShape, formatShape } from './shape-checks';

/**
 * The cached keys and values of one attention layer. Their layout is the LM's own choice
 * (`[batch, positions, kvHeads·headDim]` or `[batch, kvHeads, positions, headDim]`); only the
 * LM reads them. See {@link appendKV}.
 */
export interface LayerKV {
  /** Cached keys. */
  key: tf.Tensor;
  /** Cached values. */
  value: tf.Tensor;
}

/**
 * A decoder's KV cache: one {@link LayerKV} per layer and the number of positions it holds.
 * Plain data, so `tf.tidy` can return it; free it with {@link disposeKVCache}.
 */
export interface KVCache {
  /** One entry per decoder layer, in layer order. */
  layers: LayerKV[];
  /** Positions already cached (the past length). */
  length: number;
}

/** What every decoder layer of one forward pass gets, built once by {@link decoderContext}. */
export interface DecoderLayerContext {
  /**
   * bool `[batch, 1, queries, pastLength + queries]`: true where query `i` may attend key `j`
   * (causal, and key `j` is not padding). Broadcasts over heads.
   */
  allowed: tf.Tensor4D;
  /** int32 `[batch, queries]`: the position of each new token (padding excluded). */
  positionIds: tf.Tensor2D;
  /** Positions already in the KV cache. */
  pastLength: number;
}

/** What {@link DecoderLM.forwardLayer} returns. */
export interface DecoderLayerOutput {
  /** The layer's output hidden states `[batch, queries, hiddenSize]`. */
  hidden: tf.Tensor;
  /** This layer's keys and values for the past and the new positions (the next cache entry). */
  present: LayerKV;
}

/** Arguments of {@link DecoderLM.forward} and {@link runDecoder} (Hugging Face names, camelCase). */
export interface DecoderForwardArgs {
  /** int32 `[batch, queries]` token ids. Exactly one of `inputIds` and `inputsEmbeds`. */
  inputIds?: tf.Tensor;
  /** `[batch, queries, embedDim]` token embeddings (`embedDim` = `hiddenSize` for most LMs), used instead of `embedTokens(inputIds)`. */
  inputsEmbeds?: tf.Tensor;
  /**
   * `[batch, pastLength + queries]`, `1` for a real token and `0` for padding (Hugging Face's
   * `attention_mask`; batches are LEFT-padded for generation). Default: all ones.
   */
  attentionMask?: tf.Tensor;
  /**
   * int32 `[batch, queries]`. Default: from `attentionMask` (the count of real tokens before
   * each one, see `decoderContext`), else `pastLength + 0, 1, …`.
   */
  positionIds?: tf.Tensor;
  /** The cache of the earlier positions. Default: none. */
  pastKeyValues?: KVCache;
  /** Return the cache extended with these positions. Default: `false`. */
  useCache?: boolean;
  /** Return the hidden states entering each layer and the final normed one. Default: `false`. */
  outputHiddenStates?: boolean;
}

/** What {@link DecoderLM.forward} and {@link runDecoder} return. */
export interface DecoderOutput {
  /** `[batch, queries, vocabSize]`. */
  logits: tf.Tensor;
  /** `[batch, queries, hiddenSize]`, after the final norm. */
  lastHiddenState: tf.Tensor;
  /** With `useCache`: the cache including these positions. */
  pastKeyValues?: KVCache;
  /**
   * With `outputHiddenStates` (Hugging Face's `hidden_states`): the input of layer 0, …, of
   * layer L-1, then the output after the final norm (`numLayers + 1` tensors).
   */
  hiddenStates?: tf.Tensor[];
}

/**
 * A frozen decoder-only language model, seen as its pieces so that other modules can run
 * between its layers (Flamingo inserts gated cross-attention before layer `i`). GPT-2, OPT and
 * LLaMA fit it; so does any LM a user writes with @vlm/core modules.
 *
 * A forward pass is, in {@link runDecoder}'s order:
 *
 * ```text
 * h = embedInputs(inputsEmbeds ?? embedTokens(inputIds), ctx)      ctx = decoderContext(...)
 * for i in 0..numLayers-1: h = forwardLayer(i, h, ctx, past?.layers[i]).hidden
 * logits = lmHead(finalNorm(h))
 * ```
 *
 * Implementations keep the LM's own conventions inside these methods: absolute position
 * tables (GPT-2 `wpe`, OPT `embed_positions` at `positionIds + 2`) in `embedInputs`, rotary
 * embeddings (LLaMA) in `forwardLayer` from `ctx.positionIds`, the cache layout in `LayerKV`.
 * `forward` is normally `return runDecoder(this, args)`.
 *
 * @example
 * ```ts
 * const lm: DecoderLM = await loadGpt2(...);          // any implementation
 * const out = lm.forward({ inputIds: ids, attentionMask, useCache: true });
 * out.logits.shape;                                   // [batch, queries, vocabSize]
 * const next = lm.forward({ inputIds: nextIds, attentionMask: longerMask, pastKeyValues: out.pastKeyValues });
 * ```
 */
export interface DecoderLM extends Module {
  /** Number of decoder layers. */
  readonly numLayers: number;
  /** Width of the hidden states between layers (the residual stream; what inserted blocks see). */
  readonly hiddenSize: number;
  /**
   * Width of the token embeddings and of `inputsEmbeds` when it differs from `hiddenSize`
   * (OPT-350m's `word_embed_proj_dim`, projected in by `embedInputs`). Default: `hiddenSize`.
   */
  readonly embedDim?: number;
  /** Size of the vocabulary (the logits' last dimension). */
  readonly vocabSize: number;
  /**
   * Longest sequence (cached plus new positions) the LM accepts: its position table's size
   * (GPT-2's `n_positions`), or the context it was trained for (LLaMA's
   * `max_position_embeddings`). {@link runDecoder} refuses longer ones. Default: no limit.
   */
  readonly maxPositions?: number;
  /** Token embeddings: int32 `[batch, queries]` → `[batch, queries, embedDim]` (what `inputsEmbeds` replaces). */
  embedTokens(inputIds: tf.Tensor): tf.Tensor;
  /**
   * The hidden states entering layer 0 from the token embeddings: adds absolute position
   * embeddings (GPT-2, OPT), scales or projects where the LM does, or returns them unchanged
   * (rotary LMs). `[batch, queries, embedDim]` → `[batch, queries, hiddenSize]`.
   */
  embedInputs(inputsEmbeds: tf.Tensor, context: DecoderLayerContext): tf.Tensor;
  /**
   * Runs decoder layer `layer` (0-based) on `hidden` `[batch, queries, hiddenSize]`, attending
   * to `past` (this layer's cache entry, if any) and the new positions under `context.allowed`.
   */
  forwardLayer(layer: number, hidden: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): DecoderLayerOutput;
  /** The final norm (identity for LMs without one). */
  finalNorm(hidden: tf.Tensor): tf.Tensor;
  /** `[batch, queries, hiddenSize]` → logits `[batch, queries, vocabSize]`. */
  lmHead(hidden: tf.Tensor): tf.Tensor;
  /** The whole forward pass (usually {@link runDecoder}). */
  forward(args: DecoderForwardArgs): DecoderOutput;
}

/** Options of {@link decoderContext}. */
export interface DecoderContextOptions {
  /** Batch size. */
  batch: number;
  /** Number of new positions. */
  queries: number;
  /** Positions already cached. Default: `0`. */
  pastLength?: number;
  /** `[batch, pastLength + queries]`, 1 = real token, 0 = padding. Default: all real. */
  attentionMask?: tf.Tensor;
  /** int32 `[batch, queries]`. Default: derived from `attentionMask` (see {@link decoderContext}). */
  positionIds?: tf.Tensor;
}

/**
 * Builds the per-pass {@link DecoderLayerContext}: the causal and key-padding mask, and the
 * position ids. Without explicit `positionIds`, a token's position is the number of real
 * tokens before it (`cumsum(attentionMask) - 1`, as Hugging Face's `generate` for left-padded
 * batches; padding positions get 0), or `pastLength + i` without a mask.
 *
 * @example
 * ```ts
 * const mask = tf.tensor2d([[0, 0, 1, 1], [1, 1, 1, 1]], undefined, 'int32'); // row 0 left-padded
 * const ctx = decoderContext({ batch: 2, queries: 4, attentionMask: mask });
 * ctx.allowed.shape;            // [2, 1, 4, 4]
 * ctx.positionIds.arraySync();  // [[0, 0, 0, 1], [0, 1, 2, 3]]
 * ```
 */
export function decoderContext(options: DecoderContextOptions): DecoderLayerContext {
  const { batch: b, queries: t } = options;
  const past = options.pastLength ?? 0;
  const total = past + t;
  const { attentionMask, positionIds } = options;
  if (attentionMask) assertShape(attentionMask, [b, total], 'attentionMask', ['batch', 'pastLength+queries']);
  if (positionIds) assertShape(positionIds, [b, t], 'positionIds', ['batch', 'queries']);
  return tf.tidy(() => {
    const causal = tf.reshape(causalMask(t, total), [1, 1, t, total]);
    let allowed = causal;
    let positions: tf.Tensor;
    if (attentionMask) {
      const real = tf.notEqual(tf.cast(attentionMask, 'float32'), 0); // [b, total]
      allowed = tf.logicalAnd(causal, tf.reshape(real, [b, 1, 1, total]));
      // cumsum over positions as a product with a triangular matrix (TF.js's cumsum is unreliable on int32/wasm)
      const count = tf.matMul(tf.cast(real, 'float32'), tf.cast(tf.transpose(causalMask(total)), 'float32')); // [b, total]
      positions = tf.slice(tf.maximum(tf.sub(count, 1), 0), [0, past], [b, t]);
    } else {
      positions = tf.tile(tf.reshape(tf.range(past, total, 1, 'float32'), [1, t]), [b, 1]);
    }
    const ids = positionIds ? tf.cast(positionIds, 'int32') : tf.cast(tf.round(positions), 'int32');
    return {
      allowed: (allowed.shape[0] === b ? allowed : tf.broadcastTo(allowed, [b, 1, t, total])) as tf.Tensor4D,
      positionIds: ids as tf.Tensor2D,
      pastLength: past,
    };
  });
}

/** Hooks of {@link runDecoder}. */
export interface DecoderHooks {
  /**
   * Called with the hidden states entering layer `layer`; its result enters the layer instead.
   * This is where Flamingo runs its gated cross-attention blocks.
   */
  beforeLayer?: (layer: number, hidden: tf.Tensor, context: DecoderLayerContext) => tf.Tensor;
}

/**
 * The forward pass of any {@link DecoderLM} from its pieces (see there), with optional hooks
 * between layers. Validates the inputs, builds the context once, runs every layer, and
 * returns logits and, with `useCache`, the extended cache. All intermediates are freed.
 *
 * @example
 * ```ts
 * class MyLM extends Module implements DecoderLM {
 *   // ... embedTokens, embedInputs, forwardLayer, finalNorm, lmHead
 *   forward(args: DecoderForwardArgs) { return runDecoder(this, args); }
 * }
 * runDecoder(lm, { inputIds }, { beforeLayer: (i, h) => (i === 1 ? block.forward(h, media) : h) }).logits.shape;
 * // [batch, queries, vocabSize]
 * ```
 */
export function runDecoder(lm: DecoderLM, args: DecoderForwardArgs, hooks: DecoderHooks = {}): DecoderOutput {
  const { inputIds, inputsEmbeds, pastKeyValues: past } = args;
  const [b, t] = checkDecoderArgs(lm, args, 'DecoderLM.forward');
  return tf.tidy(() => {
    const embeds = inputsEmbeds ?? lm.embedTokens(inputIds!);
    const context = decoderContext({
      batch: b,
      queries: t,
      pastLength: past?.length ?? 0,
      attentionMask: args.attentionMask,
      positionIds: args.positionIds,
    });
    let hidden = lm.embedInputs(embeds, context);
    const hiddenStates: tf.Tensor[] = [];
    const presents: LayerKV[] = [];
    for (let i = 0; i < lm.numLayers; i++) {
      if (args.outputHiddenStates) hiddenStates.push(hidden);
      if (hooks.beforeLayer) hidden = hooks.beforeLayer(i, hidden, context);
      const out = lm.forwardLayer(i, hidden, context, past?.layers[i]);
      hidden = out.hidden;
      presents.push(out.present);
    }
    const lastHiddenState = lm.finalNorm(hidden);
    if (args.outputHiddenStates) hiddenStates.push(lastHiddenState);
    const output: DecoderOutput = { logits: lm.lmHead(lastHiddenState), lastHiddenState };
    if (args.useCache) output.pastKeyValues = { layers: presents, length: (past?.length ?? 0) + t };
    if (args.outputHiddenStates) output.hiddenStates = hiddenStates;
    return output as unknown as tf.TensorContainer;
  }) as unknown as DecoderOutput;
}

/**
 * Checks the arguments of a decoder forward before anything runs, and returns `[batch,
 * queries]`: exactly one of `inputIds` (`[batch, queries]`) and `inputsEmbeds` (float32
 * `[batch, queries, embedDim]`); a `pastKeyValues` with one live key and value per layer, each
 * `[batch, pastLength, …]` (the cache layout of {@link appendKV}); at most `lm.maxPositions`
 * positions in all. Each problem is an `Error` naming what was expected and what came.
 *
 * @param what how errors name the call, e.g. `'GPT2LMHeadModel.forward'`.
 *
 * @example
 * ```ts
 * const [batch, queries] = checkDecoderArgs(lm, args, 'MyLM.forward');
 * ```
 */
export function checkDecoderArgs(lm: DecoderLM, args: DecoderForwardArgs, what: string): [number, number] {
  const { inputIds, inputsEmbeds, pastKeyValues: past } = args;
  const embedDim = lm.embedDim ?? lm.hiddenSize;
  if ((inputIds === undefined) === (inputsEmbeds === undefined)) {
    throw new Error(`${what}: expected exactly one of inputIds [batch, queries] and inputsEmbeds [batch, queries, ${embedDim}], got ${inputIds ? 'both' : 'neither'}`);
  }
  if (inputIds) {
    assertTensor(inputIds, `${what} inputIds`);
    assertShape(inputIds, [null, null], `${what} inputIds`, ['batch', 'queries']);
  }
  if (inputsEmbeds) {
    assertTensor(inputsEmbeds, `${what} inputsEmbeds`);
    assertShape(inputsEmbeds, [null, null, embedDim], `${what} inputsEmbeds`, ['batch', 'queries', 'embedDim']);
    assertDtype(inputsEmbeds, ['float32'], `${what} inputsEmbeds`);
  }
  const [b, t] = (inputIds ?? inputsEmbeds)!.shape as [number, number];
  const pastLength = past?.length ?? 0;
  if (past) {
    if (!Number.isInteger(past.length) || past.length < 0) throw new Error(`${what} pastKeyValues: expected length to be an integer >= 0, got ${String(past.length)}`);
    if (!Array.isArray(past.layers) || past.layers.length !== lm.numLayers) {
      throw new Error(`${what} pastKeyValues: expected ${lm.numLayers} layer entries, got ${Array.isArray(past.layers) ? past.layers.length : String(past.layers)}`);
    }
    past.layers.forEach((entry, i) => {
      for (const name of ['key', 'value'] as const) {
        const c: unknown = entry?.[name];
        const label = `${what} pastKeyValues layer ${i} ${name}`;
        assertTensor(c, label);
        if (c.rank < 2 || c.shape[0] !== b || c.shape[1] !== pastLength) {
          throw new Error(`${label}: expected shape [batch=${b}, pastLength=${pastLength}, …] (a cache of this batch, as long as its length), got ${formatShape(c.shape)}`);
        }
      }
    });
  }
  if (lm.maxPositions !== undefined && pastLength + t > lm.maxPositions) {
    throw new Error(`${what}: expected at most ${lm.maxPositions} positions (the LM's maxPositions), got ${pastLength + t} (${pastLength} cached + ${t} new)`);
  }
  return [b, t];
}

function assertTensor(x: unknown, what: string): asserts x is tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new Error(`${what}: expected a tf.Tensor, got ${x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x}`);
  if (x.isDisposed) throw new Error(`${what}: expected a live tf.Tensor, got a disposed one`);
}

/**
 * A layer's next cache entry: `past` with the new keys and values appended along `axis` (the
 * positions axis of the LM's layout). Without `past`, clones of `key` and `value`.
 *
 * @example
 * ```ts
 * const next = appendKV(past, k, v, 1); // past.key [b, 5, 32] + k [b, 1, 32] → [b, 6, 32]
 * ```
 */
export function appendKV(past: LayerKV | undefined, key: tf.Tensor, value: tf.Tensor, axis = 1): LayerKV {
  if (past && (past.key.rank !== key.rank || past.value.rank !== value.rank)) {
    throw new Error(`appendKV: cached key ${formatShape(past.key.shape)} and new key ${formatShape(key.shape)} differ in rank`);
  }
  return tf.tidy(() => ({
    key: past ? tf.concat([past.key, key], axis) : tf.clone(key),
    value: past ? tf.concat([past.value, value], axis) : tf.clone(value),
  }));
}

/** Disposes every tensor of a cache (or of anything that holds caches). */
export function disposeKVCache(cache: KVCache | undefined): void {
  if (cache) tf.dispose(cache as unknown as tf.TensorContainer);
}

/** Arguments of {@link generateGreedy}. */
export interface GreedyGenerationArgs {
  /** int32 `[batch, promptLength]` prompt, LEFT-padded when rows differ in length. */
  inputIds: tf.Tensor;
  /** `[batch, promptLength]`, 1 = real, 0 = padding. Default: all real. */
  attentionMask?: tf.Tensor;
  /** Number of tokens to generate. */
  maxNewTokens: number;
  /** A row that produced this id is finished; later tokens of that row are `padTokenId`. */
  eosTokenId?: number;
  /** Filler after `eosTokenId`. Default: `eosTokenId`. */
  padTokenId?: number;
  /** Use the KV cache (false recomputes the whole sequence each step). Default: `true`. */
  useCache?: boolean;
}

/** What {@link generateGreedy} returns. */
export interface GreedyGenerationOutput {
  /** int32 `[batch, promptLength + generated]`: the prompt and the generated ids. */
  sequences: tf.Tensor2D;
  /** `[batch, generated, vocabSize]`: the logits each token was chosen from. */
  stepLogits: tf.Tensor3D;
}

/** What a {@link GenerationForward} returns: at least the logits and the extended cache. */
export interface GenerationStep<C extends KVCache = KVCache> {
  /** `[batch, queries, vocabSize]`. */
  logits: tf.Tensor;
  /** The cache including these positions (when called with `useCache`). */
  pastKeyValues?: C;
}

/** The forward function {@link generateGreedy} drives (an LM's `forward`, or a wrapper's). */
export type GenerationForward<C extends KVCache = KVCache> = (args: DecoderForwardArgs & { pastKeyValues?: C }) => GenerationStep<C>;

/**
 * Greedy decoding (Hugging Face `generate(do_sample=False, num_beams=1)`) with a KV cache:
 * the prompt in one pass, then one token per step, the attention mask growing by one real
 * position per step. Stops early when every row has produced `eosTokenId`.
 *
 * @example
 * ```ts
 * const { sequences, stepLogits } = generateGreedy((a) => lm.forward(a), { inputIds: prompt, maxNewTokens: 6 });
 * sequences.shape;  // [batch, promptLength + 6]
 * stepLogits.shape; // [batch, 6, vocabSize]
 * ```
 */
export function generateGreedy<C extends KVCache>(forward: GenerationForward<C>, args: GreedyGenerationArgs): GreedyGenerationOutput {
  const run = greedyRun(forward, args, 'generateGreedy');
  try {
    while (run.more()) {
      const argMax = run.step();
      const chosen = Array.from(argMax.dataSync());
      argMax.dispose();
      run.choose(chosen);
    }
    return run.finish();
  } finally {
    run.dispose();
  }
}

/**
 * A {@link GenerationForward} for {@link generateGreedyAsync}: also gets the values of this
 * call's `inputIds` as JS numbers, one array per row (the prompt at the first call, then, with
 * the cache, each row's last chosen token), so it can check them on the host instead of
 * reading them back.
 */
export type AsyncGenerationForward<C extends KVCache = KVCache> = (args: DecoderForwardArgs & { pastKeyValues?: C }, inputIdValues: number[][]) => GenerationStep<C>;

/**
 * {@link generateGreedy} without synchronous read-backs: each step's chosen ids come back with
 * `await data()` (and the prompt's once with `await array()`), so the GPU is never stalled; this
 * is how to generate on WebGPU. The same tokens and logits as {@link generateGreedy}. The
 * forward still runs synchronously: if it makes checks that read tensors back, run it in
 * {@link withoutReadbackChecks} and check `inputIdValues` (the second argument) on the host,
 * as `FlamingoLM.generateAsync` does.
 *
 * @example
 * ```ts
 * const { sequences } = await generateGreedyAsync((a, ids) => {
 *   checkTokenIds(ids, lm.vocabSize, 'generateGreedyAsync ids');
 *   return withoutReadbackChecks(() => lm.forward(a));
 * }, { inputIds: prompt, maxNewTokens: 6 });
 * const rows = await sequences.array(); // prompt + 6 ids per row
 * sequences.dispose();
 * ```
 */
export async function generateGreedyAsync<C extends KVCache>(forward: AsyncGenerationForward<C>, args: GreedyGenerationArgs): Promise<GreedyGenerationOutput> {
  // the sequence's ids on the host too; each forward gets those of the columns it is given
  let rows: number[][] = [];
  const run = greedyRun<C>((a) => forward(a, rows.map((r) => r.slice(r.length - a.inputIds!.shape[1]!))), args, 'generateGreedyAsync');
  try {
    rows = (await args.inputIds.array()) as number[][];
    while (run.more()) {
      const argMax = run.step();
      let chosen: number[];
      try {
        chosen = Array.from(await argMax.data());
      } finally {
        argMax.dispose();
      }
      const next = run.choose(chosen);
      rows = rows.map((r, i) => [...r, next[i]!]);
    }
    return run.finish();
  } finally {
    run.dispose();
  }
}

// The greedy loop of generateGreedy and generateGreedyAsync, one step at a time: `step` runs the
// forward and returns the argmax ids [b] (for the caller to read, sync or async); `choose` takes
// them back as numbers and extends the sequence.
function greedyRun<C extends KVCache>(forward: GenerationForward<C>, args: GreedyGenerationArgs, what: string) {
  const { inputIds, maxNewTokens, eosTokenId } = args;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new Error(`${what}: expected maxNewTokens to be an integer >= 0, got ${String(maxNewTokens)}`);
  assertTensor(inputIds, `${what} inputIds`);
  assertShape(inputIds, [null, null], `${what} inputIds`, ['batch', 'promptLength']);
  const [b, n] = inputIds.shape as [number, number];
  if (b === 0 || n === 0) {
    throw new Error(`${what} inputIds: expected a prompt of batch >= 1 and promptLength >= 1 (the first new token is predicted from the last prompt position), got ${formatShape(inputIds.shape)}`);
  }
  if (args.attentionMask) assertShape(args.attentionMask, [b, n], `${what} attentionMask`, ['batch', 'promptLength']);
  const useCache = args.useCache ?? true;
  const pad = args.padTokenId ?? eosTokenId ?? 0;
  let sequence: tf.Tensor | null = tf.cast(inputIds, 'int32');
  let mask = args.attentionMask ? tf.cast(args.attentionMask, 'int32') : tf.ones([b, n], 'int32');
  let cache: C | undefined;
  const steps: tf.Tensor[] = [];
  const finished = new Array<boolean>(b).fill(false);
  let step = 0;
  return {
    more: () => step < maxNewTokens && !finished.every(Boolean),
    step: (): tf.Tensor1D => {
      const seq = sequence!;
      const out = tf.tidy(() => {
        const o = forward({
          inputIds: cache ? tf.slice(seq, [0, seq.shape[1]! - 1], [b, 1]) : seq,
          attentionMask: mask,
          pastKeyValues: cache,
          useCache,
        });
        const t = o.logits.shape[1]!;
        const last = tf.reshape(tf.slice(o.logits, [0, t - 1, 0], [b, 1, -1]), [b, -1]);
        return { last, cache: o.pastKeyValues } as unknown as tf.TensorContainer;
      }) as unknown as { last: tf.Tensor2D; cache?: C };
      disposeKVCache(cache);
      cache = useCache ? out.cache : undefined;
      if (!useCache) disposeKVCache(out.cache);
      const argMax = tf.argMax(out.last, -1) as tf.Tensor1D;
      steps.push(tf.reshape(out.last, [b, 1, -1]));
      out.last.dispose();
      return argMax;
    },
    choose: (chosen: number[]): number[] => {
      const next = chosen.map((id, r) => (finished[r] ? pad : id));
      next.forEach((id, r) => {
        if (eosTokenId !== undefined && id === eosTokenId) finished[r] = true;
      });
      const [s, m] = [sequence!, mask];
      sequence = tf.tidy(() => tf.concat([s, tf.tensor2d(next, [b, 1], 'int32')], 1));
      mask = tf.tidy(() => tf.concat([m, tf.ones([b, 1], 'int32')], 1));
      tf.dispose([s, m]);
      step++;
      return next;
    },
    finish: (): GreedyGenerationOutput => {
      const stepLogits = (steps.length ? tf.concat(steps, 1) : tf.zeros([b, 0, 0])) as tf.Tensor3D;
      const sequences = sequence as tf.Tensor2D;
      sequence = null; // the caller's now
      return { sequences, stepLogits };
    },
    dispose: () => {
      disposeKVCache(cache);
      tf.dispose([mask, ...steps]);
      if (sequence) sequence.dispose();
    },
  };
}
