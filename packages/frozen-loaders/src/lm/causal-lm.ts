import * as tf from '@tensorflow/tfjs-core';
import {
  Module,
  checkDecoderArgs,
  decoderContext,
  type DecoderForwardArgs,
  type DecoderHooks,
  type DecoderLM,
  type DecoderLayerContext,
  type DecoderLayerOutput,
  type DecoderOutput,
  type LayerKV,
} from '@vlm/core';

/** One decoder layer: `[batch, tokens, hidden] → [batch, tokens, hidden]` plus its next cache entry. */
export interface DecoderLayerModule extends Module {
  /**
   * Runs the layer on `hidden` `[batch, tokens, hidden]` with the pass's shared `context`
   * (positions, attention mask) and this layer's cache entry `past` (keys and values of earlier
   * tokens, if any). Returns the layer output `[batch, tokens, hidden]` and the next cache entry
   * `present` (`past` plus these tokens, `[batch, past + tokens, kvHeads·headDim]`).
   */
  forward(hidden: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): DecoderLayerOutput;
}

/** Shapes and special tokens of a loaded decoder LM, read from its config. */
export interface CausalLMInfo {
  /** Hugging Face `model_type`. */
  modelType: 'gpt2' | 'opt' | 'llama';
  /** Number of token ids: rows of the token embedding table and the logits' last dimension (`vocab_size`). */
  vocabSize: number;
  /** Width of the residual stream (the hidden states between layers). */
  hiddenSize: number;
  /** Width of the token embeddings, `inputsEmbeds` and the LM head input (OPT's `word_embed_proj_dim`; else `hiddenSize`). */
  embedDim: number;
  /** Number of decoder layers (`n_layer` / `num_hidden_layers`). */
  numLayers: number;
  /** Number of query attention heads (`n_head` / `num_attention_heads`). */
  numHeads: number;
  /** Number of key/value heads: `numHeads`, or fewer for LLaMA grouped-query attention (`num_key_value_heads`). */
  numKeyValueHeads: number;
  /** Width of one attention head; q is `[batch, tokens, numHeads·headDim]`, k and v `[batch, tokens, numKeyValueHeads·headDim]`. */
  headDim: number;
  /** Longest sequence the position table allows (`undefined` for rotary models). */
  maxPositions?: number;
  /** `bos_token_id` of the config (`undefined` when absent or `null`). */
  bosTokenId?: number;
  /** `eos_token_id` of the config, as a list (empty when absent). */
  eosTokenIds: number[];
  /** `pad_token_id` of the config (`undefined` when absent or `null`). */
  padTokenId?: number;
  /** Whether the LM head shares the token embedding table. */
  tiedEmbeddings: boolean;
}

/**
 * Arguments of {@link CausalLM.forward}: core's `DecoderForwardArgs` (Hugging Face names:
 * `inputIds` | `inputsEmbeds`, `attentionMask` `[batch, past + tokens]` with left padding,
 * `positionIds`, `pastKeyValues`, `useCache`, `outputHiddenStates`) plus `logitsToKeep`.
 * Positions default to core's `decoderContext`: `cumsum(mask) − 1` with a mask (HF
 * `generate()`'s convention; OPT's own, table row = position + 2), else `past + 0, 1, …`.
 * GPT-2 and OPT still add their position tables to `inputsEmbeds`; LLaMA rotates q and k.
 */
export interface CausalLMForwardArgs extends DecoderForwardArgs {
  /** Compute logits only for the last `n` positions (HF `logits_to_keep`). Default: `0` = all. */
  logitsToKeep?: number;
}

/** Result of {@link CausalLM.forward}: core's `DecoderOutput` plus the raw last layer output. The caller disposes every tensor. */
export interface CausalLMOutput extends DecoderOutput {
  /** The last layer's output before the final norm `[batch, tokens, hidden]` (not in HF's `hidden_states`). */
  lastLayerOutput: tf.Tensor;
}

/**
 * Base of the frozen decoder-only language models (GPT-2, OPT, LLaMA); implements core's
 * `DecoderLM`, so `runDecoder(lm, args, { beforeLayer })` can insert blocks (Flamingo's gated
 * cross-attention) before any layer. {@link CausalLM.forward} runs the same steps
 * (`decoderContext` → `embedInputs` → `forwardLayer` × L → `finalNorm` → `lmHead`) and also
 * returns `lastLayerOutput` and honours `logitsToKeep`.
 *
 * @example
 * ```ts
 * const out = lm.forward({ inputIds: tf.tensor2d([[5, 7, 9]], undefined, 'int32'), outputHiddenStates: true });
 * out.logits.shape; // [1, 3, vocab]
 * out.hiddenStates!.length; // numLayers + 1
 * ```
 */
export abstract class CausalLM extends Module implements DecoderLM {
  /** Sizes and special tokens. */
  abstract readonly info: CausalLMInfo;
  /** The decoder layers, in order. */
  abstract readonly layers: readonly DecoderLayerModule[];
  /** The Hugging Face class this mirrors (`GPT2LMHeadModel`, `OPTForCausalLM`, `LlamaForCausalLM`). */
  abstract readonly hfClass: string;

  /** Number of decoder layers. */
  get numLayers(): number {
    return this.info.numLayers;
  }

  /** Width of the hidden states between layers. */
  get hiddenSize(): number {
    return this.info.hiddenSize;
  }

  /** Vocabulary size (the logits' last dimension). */
  get vocabSize(): number {
    return this.info.vocabSize;
  }

  /**
   * Longest sequence (cached plus new positions) a forward accepts: the position table's size
   * (GPT-2, OPT), or `max_position_embeddings` for LLaMA unless its `allowLongerSequences` is set.
   */
  get maxPositions(): number | undefined {
    return this.info.maxPositions;
  }

  /** The token embedding table `[vocab, embedDim]` (frozen). */
  abstract get tokenEmbeddingTable(): tf.Variable;

  /** Token embeddings of int32 ids `[batch, tokens]` → `[batch, tokens, embedDim]` (no positions). */
  abstract embedTokens(inputIds: tf.Tensor): tf.Tensor;

  /**
   * `hidden_states[0]`: the input embeddings with positions added at `context.positionIds`
   * (GPT-2 `wpe`; OPT `embed_positions` row + 2, after `project_in`) or unchanged (LLaMA).
   * `[batch, tokens, embedDim] → [batch, tokens, hidden]`.
   */
  abstract embedInputs(inputsEmbeds: tf.Tensor, context: DecoderLayerContext): tf.Tensor;

  /** The final norm (`ln_f`, `final_layer_norm` then OPT's `project_out`, `norm`). */
  abstract finalNorm(hidden: tf.Tensor): tf.Tensor;

  /** LM head: `[batch, tokens, embedDim] → [batch, tokens, vocab]`. */
  abstract lmHead(hidden: tf.Tensor): tf.Tensor;

  /**
   * Maps a checkpoint key to this model's state-dict key, or `null` for a key that is not a
   * weight and is ignored (buffers, a tied `lm_head.weight`). Adds base-model prefixes.
   */
  abstract checkpointKey(key: string): string | null;

  /** Runs decoder layer `layer` (0-based). The cache entry layout is `[batch, positions, kvHeads·headDim]`. */
  forwardLayer(layer: number, hidden: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): DecoderLayerOutput {
    const l = this.layers[layer];
    if (!l) throw new Error(`${this.hfClass}: layer ${layer} out of range [0, ${this.layers.length})`);
    return l.forward(hidden, context, past);
  }

  /**
   * Adds per-pass tensors to a context built by `decoderContext` (LLaMA: the rotary tables, so
   * that they are computed once per pass rather than per layer). Called inside a `tf.tidy`.
   */
  protected prepareContext(context: DecoderLayerContext): DecoderLayerContext {
    return context;
  }

  /** The full forward pass in one `tf.tidy`; see {@link CausalLMForwardArgs}. `hooks` as core's `runDecoder`. */
  forward(args: CausalLMForwardArgs, hooks: DecoderHooks = {}): CausalLMOutput {
    const { inputIds, inputsEmbeds, pastKeyValues: past } = args;
    const [batch, tokens] = checkDecoderArgs(this, args, `${this.hfClass}.forward`);
    return tf.tidy(() => {
      const embeds = inputsEmbeds ?? this.embedTokens(inputIds!);
      const pastLength = past?.length ?? 0;
      const context = this.prepareContext(
        decoderContext({ batch, queries: tokens, pastLength, attentionMask: args.attentionMask, positionIds: args.positionIds }),
      );
      let hidden = this.embedInputs(embeds, context);
      const hiddenStates: tf.Tensor[] = [];
      const presents: LayerKV[] = [];
      for (let i = 0; i < this.numLayers; i++) {
        hiddenStates.push(hidden);
        if (hooks.beforeLayer) hidden = hooks.beforeLayer(i, hidden, context);
        const out = this.forwardLayer(i, hidden, context, past?.layers[i]);
        hidden = out.hidden;
        presents.push(out.present);
      }
      const lastLayerOutput = hidden;
      const lastHiddenState = this.finalNorm(hidden);
      hiddenStates.push(lastHiddenState);
      const keep = args.logitsToKeep ?? 0;
      const forLogits = keep > 0 && keep < tokens ? tf.slice(lastHiddenState, [0, tokens - keep, 0], [-1, keep, -1]) : lastHiddenState;
      const result: CausalLMOutput = { logits: this.lmHead(forLogits), lastHiddenState, lastLayerOutput };
      if (args.outputHiddenStates) result.hiddenStates = hiddenStates;
      if (args.useCache) result.pastKeyValues = { layers: presents, length: pastLength + tokens };
      return result as unknown as tf.TensorContainer;
    }) as unknown as CausalLMOutput;
  }
}
