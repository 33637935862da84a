/**
 * Constructor arguments of {@link QFormer}: Hugging Face's `Blip2QFormerConfig` in camelCase,
 * plus the number of query tokens and the optional language projection of `Blip2Config`.
 * Every field has the BLIP-2 (ViT-g, BERT-base) default.
 *
 * Dropout (`hidden_dropout_prob`, `attention_probs_dropout_prob`) is not an argument: every
 * forward pass has eval semantics (dropout is the identity), as the golden references.
 *
 * @example
 * ```ts
 * const args: QFormerArgs = { hiddenSize: 32, numHiddenLayers: 3, numAttentionHeads: 4, intermediateSize: 64, encoderHiddenSize: 24, numQueryTokens: 8 };
 * new QFormer(args).forward(tf.zeros([2, 17, 24])).shape; // [2, 8, 32]
 * ```
 */
export interface QFormerArgs {
  /** Width `H` of queries, text tokens and every layer. Default: `768`. */
  hiddenSize?: number;
  /** Number of BERT layers. Default: `12`. */
  numHiddenLayers?: number;
  /** Attention heads; `hiddenSize` must be divisible by it. Default: `12`. */
  numAttentionHeads?: number;
  /** Hidden width of the feed-forward blocks. Default: `3072`. */
  intermediateSize?: number;
  /** Layer `i` cross-attends to the image when `i % crossAttentionFrequency == 0`. Default: `2`. */
  crossAttentionFrequency?: number;
  /** Width `E` of the frozen vision features. Default: `1408` (EVA ViT-g). */
  encoderHiddenSize?: number;
  /** Number `Q` of learned query tokens. Default: `32`. */
  numQueryTokens?: number;
  /** LayerNorm epsilon of every LayerNorm. Default: `1e-12`. */
  layerNormEps?: number;
  /**
   * Build the text branch: word and position embeddings and the text feed-forward blocks
   * (`intermediate`, `output`), needed by every mode but `'query'`. Hugging Face's
   * `Blip2ForConditionalGeneration` has no text branch (`use_qformer_text_input: false`).
   * Default: `true`.
   */
  useTextInput?: boolean;
  /** Text vocabulary (BERT's 30522 plus LAVIS' `[DEC]`). Default: `30523`. */
  vocabSize?: number;
  /** Rows of the text position table; text length may not exceed it. Default: `512`. */
  maxPositionEmbeddings?: number;
  /** Padding id: its word-embedding row gets no gradient (PyTorch `padding_idx`). Default: `0`. */
  padTokenId?: number;
  /** When set, adds `language_projection`, a Linear `H → llmHiddenSize` (BLIP-2 stage 2). Default: `null`. */
  llmHiddenSize?: number | null;
}

/** {@link QFormerArgs} with every default filled in (what `getConfig()` returns). */
export type ResolvedQFormerArgs = { [K in Exclude<keyof QFormerArgs, 'llmHiddenSize'>]-?: NonNullable<QFormerArgs[K]> } & {
  /** Width of the language model that `language_projection` maps to, or `null` when there is no projection. */
  llmHiddenSize: number | null;
};

/**
 * Fills in the defaults of {@link QFormerArgs} and checks them.
 *
 * @example
 * ```ts
 * resolveQFormerArgs({ hiddenSize: 32, numAttentionHeads: 4 }).layerNormEps; // 1e-12
 * ```
 */
export function resolveQFormerArgs(args: QFormerArgs = {}): ResolvedQFormerArgs {
  const r: ResolvedQFormerArgs = {
    hiddenSize: args.hiddenSize ?? 768,
    numHiddenLayers: args.numHiddenLayers ?? 12,
    numAttentionHeads: args.numAttentionHeads ?? 12,
    intermediateSize: args.intermediateSize ?? 3072,
    crossAttentionFrequency: args.crossAttentionFrequency ?? 2,
    encoderHiddenSize: args.encoderHiddenSize ?? 1408,
    numQueryTokens: args.numQueryTokens ?? 32,
    layerNormEps: args.layerNormEps ?? 1e-12,
    useTextInput: args.useTextInput ?? true,
    vocabSize: args.vocabSize ?? 30523,
    maxPositionEmbeddings: args.maxPositionEmbeddings ?? 512,
    padTokenId: args.padTokenId ?? 0,
    llmHiddenSize: args.llmHiddenSize ?? null,
  };
  for (const [k, v] of Object.entries(r)) {
    if (k === 'layerNormEps' || k === 'useTextInput' || k === 'padTokenId' || k === 'llmHiddenSize') continue;
    if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`QFormerArgs.${k}: expected a positive integer, got ${String(v)}`);
  }
  if (r.hiddenSize % r.numAttentionHeads !== 0) {
    throw new Error(`QFormerArgs: hiddenSize (${r.hiddenSize}) must be divisible by numAttentionHeads (${r.numAttentionHeads})`);
  }
  if (r.llmHiddenSize !== null && (!Number.isInteger(r.llmHiddenSize) || r.llmHiddenSize < 1)) {
    throw new Error(`QFormerArgs.llmHiddenSize: expected a positive integer or null, got ${String(r.llmHiddenSize)}`);
  }
  if (!(r.layerNormEps > 0)) throw new Error(`QFormerArgs.layerNormEps: expected a positive number, got ${r.layerNormEps}`);
  return r;
}

/**
 * Reads the snake_case PyTorch/Hugging Face Q-Former config (`Blip2QFormerConfig`, or the
 * `QFormerConfig` of the reference code: `hidden_size`, `num_query_tokens`, `use_text_input`
 * or `use_qformer_text_input`, `llm_hidden_size`, …). Unknown keys (dropout probabilities,
 * `model_type`, …) are ignored.
 *
 * @example
 * ```ts
 * qformerArgsFromConfig({ hidden_size: 32, num_hidden_layers: 3, num_query_tokens: 8 }).numQueryTokens; // 8
 * ```
 */
export function qformerArgsFromConfig(config: Record<string, unknown>): QFormerArgs {
  const num = (key: string): number | undefined => {
    const v = config[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw new Error(`Q-Former config '${key}': expected a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const textInput = config.use_text_input ?? config.use_qformer_text_input;
  return {
    hiddenSize: num('hidden_size'),
    numHiddenLayers: num('num_hidden_layers'),
    numAttentionHeads: num('num_attention_heads'),
    intermediateSize: num('intermediate_size'),
    crossAttentionFrequency: num('cross_attention_frequency'),
    encoderHiddenSize: num('encoder_hidden_size'),
    numQueryTokens: num('num_query_tokens'),
    layerNormEps: num('layer_norm_eps'),
    useTextInput: typeof textInput === 'boolean' ? textInput : undefined,
    vocabSize: num('vocab_size'),
    maxPositionEmbeddings: num('max_position_embeddings'),
    padTokenId: num('pad_token_id'),
    llmHiddenSize: num('llm_hidden_size') ?? null,
  };
}

/**
 * The {@link QFormerArgs} of a Hugging Face BLIP-2 `config.json` (`Blip2Config`): the
 * `qformer_config`, `num_query_tokens`, the vision width as `encoderHiddenSize` (when the
 * Q-Former config lacks it) and the language model width as `llmHiddenSize`
 * (`language_projection`). The text branch follows `use_qformer_text_input` (`false` when
 * absent, as `Blip2ForConditionalGeneration`).
 *
 * @example
 * ```ts
 * const args = qformerArgsFromHfBlip2Config(JSON.parse(readFileSync('config.json', 'utf8')));
 * // tiny-blip2-opt: { hiddenSize: 32, numQueryTokens: 6, encoderHiddenSize: 32, llmHiddenSize: 48, useTextInput: false, … }
 * ```
 */
export function qformerArgsFromHfBlip2Config(config: Record<string, unknown>): QFormerArgs {
  const q = config.qformer_config as Record<string, unknown> | undefined;
  if (typeof q !== 'object' || q === null) {
    throw new Error(`BLIP-2 config: expected an object 'qformer_config', got ${JSON.stringify(q)}`);
  }
  const vision = (config.vision_config ?? {}) as Record<string, unknown>;
  const text = (config.text_config ?? {}) as Record<string, unknown>;
  const args = qformerArgsFromConfig(q);
  return {
    ...args,
    encoderHiddenSize: args.encoderHiddenSize ?? (vision.hidden_size as number | undefined),
    numQueryTokens: (config.num_query_tokens as number | undefined) ?? args.numQueryTokens,
    useTextInput: q.use_qformer_text_input === true,
    llmHiddenSize: (text.hidden_size as number | undefined) ?? null,
  };
}
