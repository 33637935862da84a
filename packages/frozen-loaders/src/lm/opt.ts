import * as tf from '@tensorflow/tfjs-core';
import { Embedding, LayerNorm, Linear, Module, ModuleList, type DecoderLayerContext, type LayerKV } from '@vlm/core';
import { applyActivation } from './activation';
import { cachedSelfAttention } from './cached-attention';
import { CausalLM, type CausalLMInfo } from './causal-lm';
import type { OPTConfig } from './opt-config';
import { tiedLogits } from './tied-logits';

/** The row offset of OPT's learned position table: position `p` uses row `p + 2`. */
export const OPT_POSITION_OFFSET = 2;

/**
 * OPT self-attention: `q_proj` (scaled by `head_dim^-0.5`), `k_proj`, `v_proj`, `out_proj`.
 *
 * @example
 * ```ts
 * new OPTAttention(cfg).forward(tf.zeros([2, 7, 32]), decoderContext({ batch: 2, queries: 7 })).output.shape; // [2, 7, 32]
 * ```
 */
export class OPTAttention extends Module {
  /** Query projection `[hiddenSize → hiddenSize]` (bias if `enableBias`); the logits are scaled by `headDim^-0.5`. */
  readonly q_proj: Linear;
  /** Key projection `[hiddenSize → hiddenSize]` (bias if `enableBias`). */
  readonly k_proj: Linear;
  /** Value projection `[hiddenSize → hiddenSize]` (bias if `enableBias`). */
  readonly v_proj: Linear;
  /** Output projection `[hiddenSize → hiddenSize]` (bias if `enableBias`). */
  readonly out_proj: Linear;

  constructor(
    /** The model config (`hiddenSize`, `numAttentionHeads`, `enableBias`). */
    readonly config: OPTConfig,
  ) {
    super();
    const d = config.hiddenSize;
    const lin = () => new Linear({ inFeatures: d, outFeatures: d, bias: config.enableBias });
    // HF registers k, v, q, out in this order.
    this.k_proj = this.registerModule('k_proj', lin());
    this.v_proj = this.registerModule('v_proj', lin());
    this.q_proj = this.registerModule('q_proj', lin());
    this.out_proj = this.registerModule('out_proj', lin());
  }

  /** `[b, t, D]` → `[b, t, D]` and the layer's cache entry. */
  forward(x: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): {
    /** Attention output after `out_proj` `[batch, tokens, D]`. */
    output: tf.Tensor;
    /** The layer's next cache entry: `past` plus these tokens' keys and values, each `[batch, past + tokens, D]`. */
    present: LayerKV;
  } {
    return tf.tidy(() => {
      const { output, present } = cachedSelfAttention(this.q_proj.forward(x), this.k_proj.forward(x), this.v_proj.forward(x), {
        heads: this.config.numAttentionHeads,
        allowed: context.allowed,
        past,
      });
      return { output: this.out_proj.forward(output), present } as unknown as tf.TensorContainer;
    }) as unknown as { output: tf.Tensor; present: LayerKV };
  }
}

/**
 * One OPT decoder layer, pre-LN or post-LN (`do_layer_norm_before`).
 *
 * @example
 * ```ts
 * new OPTDecoderLayer(cfg).forward(tf.zeros([2, 7, 32]), decoderContext({ batch: 2, queries: 7 })).hidden.shape; // [2, 7, 32]
 * ```
 */
export class OPTDecoderLayer extends Module {
  /** The layer's causal self-attention. */
  readonly self_attn: OPTAttention;
  /** LayerNorm of the attention sub-block: before it (pre-LN) or after its residual add (post-LN). */
  readonly self_attn_layer_norm: LayerNorm;
  /** MLP up projection `[hiddenSize → ffnDim]` (bias if `enableBias`). */
  readonly fc1: Linear;
  /** MLP down projection `[ffnDim → hiddenSize]` (bias if `enableBias`). */
  readonly fc2: Linear;
  /** LayerNorm of the MLP sub-block: before it (pre-LN) or after its residual add (post-LN). */
  readonly final_layer_norm: LayerNorm;

  constructor(
    /** The model config (`doLayerNormBefore` picks pre-LN or post-LN). */
    readonly config: OPTConfig,
  ) {
    super();
    const d = config.hiddenSize;
    const ln = () => new LayerNorm({ dim: d, elementwiseAffine: config.layerNormElementwiseAffine });
    this.self_attn = this.registerModule('self_attn', new OPTAttention(config));
    this.self_attn_layer_norm = this.registerModule('self_attn_layer_norm', ln());
    this.fc1 = this.registerModule('fc1', new Linear({ inFeatures: d, outFeatures: config.ffnDim, bias: config.enableBias }));
    this.fc2 = this.registerModule('fc2', new Linear({ inFeatures: config.ffnDim, outFeatures: d, bias: config.enableBias }));
    this.final_layer_norm = this.registerModule('final_layer_norm', ln());
  }

  /** `[b, t, D] → [b, t, D]` and the layer's cache entry. */
  forward(x: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): {
    /** Layer output `[batch, tokens, D]`. */
    hidden: tf.Tensor;
    /** The layer's next cache entry: `past` plus these tokens' keys and values, each `[batch, past + tokens, D]`. */
    present: LayerKV;
  } {
    const pre = this.config.doLayerNormBefore;
    return tf.tidy(() => {
      const a = this.self_attn.forward(pre ? this.self_attn_layer_norm.forward(x) : x, context, past);
      let h = tf.add(x, a.output);
      if (!pre) h = this.self_attn_layer_norm.forward(h);
      const ffIn = pre ? this.final_layer_norm.forward(h) : h;
      h = tf.add(h, this.fc2.forward(applyActivation(this.config.activationFunction, this.fc1.forward(ffIn))));
      if (!pre) h = this.final_layer_norm.forward(h);
      return { hidden: h, present: a.present } as unknown as tf.TensorContainer;
    }) as unknown as { hidden: tf.Tensor; present: LayerKV };
  }
}

/**
 * OPT's decoder (`model.decoder`): embeddings, optional projections, layers, final norm.
 *
 * @example
 * ```ts
 * new OPTDecoder(cfg).stateDictShapes()['embed_positions.weight']; // [max_position_embeddings + 2, 32]
 * ```
 */
export class OPTDecoder extends Module {
  /** Token embeddings, `weight` `[vocabSize, wordEmbedProjDim]`. */
  readonly embed_tokens: Embedding;
  /** Learned position embeddings, `weight` `[maxPositionEmbeddings + 2, hiddenSize]`; position `p` uses row `p + 2`. */
  readonly embed_positions: Embedding;
  /** `[hiddenSize → wordEmbedProjDim]`, no bias, applied after the final norm; `null` when the two widths are equal. */
  readonly project_out: Linear | null;
  /** `[wordEmbedProjDim → hiddenSize]`, no bias, applied to the input embeddings before positions are added; `null` when the two widths are equal. */
  readonly project_in: Linear | null;
  /** LayerNorm after the last layer; `null` for post-LN models or when `removeFinalLayerNorm`. */
  readonly final_layer_norm: LayerNorm | null;
  /** The `numHiddenLayers` decoder layers, in order. */
  readonly layers: ModuleList<OPTDecoderLayer>;

  constructor(config: OPTConfig) {
    super();
    const d = config.hiddenSize;
    const w = config.wordEmbedProjDim;
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding({ numEmbeddings: config.vocabSize, embeddingDim: w }));
    this.embed_positions = this.registerModule(
      'embed_positions',
      new Embedding({ numEmbeddings: config.maxPositionEmbeddings + OPT_POSITION_OFFSET, embeddingDim: d }),
    );
    const projected = w !== d;
    this.project_out = projected ? this.registerModule('project_out', new Linear({ inFeatures: d, outFeatures: w, bias: false })) : null;
    this.project_in = projected ? this.registerModule('project_in', new Linear({ inFeatures: w, outFeatures: d, bias: false })) : null;
    this.final_layer_norm =
      config.doLayerNormBefore && !config.removeFinalLayerNorm
        ? this.registerModule('final_layer_norm', new LayerNorm({ dim: d, elementwiseAffine: config.layerNormElementwiseAffine }))
        : null;
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new OPTDecoderLayer(config))));
  }
}

/**
 * `OPTModel`: holds the decoder under `decoder`.
 *
 * @example
 * ```ts
 * Object.keys(new OPTModel(cfg).stateDictShapes())[0]; // 'decoder.embed_tokens.weight'
 * ```
 */
export class OPTModel extends Module {
  /** The decoder (state-dict prefix `decoder.`). */
  readonly decoder: OPTDecoder;

  constructor(config: OPTConfig) {
    super();
    this.decoder = this.registerModule('decoder', new OPTDecoder(config));
  }
}

/**
 * OPT with its LM head, as Hugging Face's `OPTForCausalLM` (keys `model.decoder.*`; the head is
 * tied to `embed_tokens` unless `tie_word_embeddings: false`). Positions come from the
 * attention mask (`cumsum(mask) − 1` on real tokens, table row = position + 2) unless
 * `positionIds` are passed (as newer HF versions allow).
 *
 * @example
 * ```ts
 * const lm = new OPTForCausalLM(parseOPTConfig(json));
 * const mask = tf.tensor2d([[0, 1, 1], [1, 1, 1]], undefined, 'int32');
 * lm.forward({ inputIds, attentionMask: mask }).logits.shape; // [2, 3, 101]
 * ```
 */
export class OPTForCausalLM extends CausalLM {
  readonly hfClass = 'OPTForCausalLM';
  readonly info: CausalLMInfo;
  /** The OPT body (state-dict prefix `model.`; the decoder's keys are `model.decoder.*`). */
  readonly model: OPTModel;
  /** Untied LM head `[wordEmbedProjDim → vocabSize]`, no bias; `null` when `tieWordEmbeddings` (logits then use `embed_tokens`). */
  readonly lm_head: Linear | null;

  constructor(
    /** The model config. */
    readonly config: OPTConfig,
  ) {
    super();
    this.model = this.registerModule('model', new OPTModel(config));
    this.lm_head = config.tieWordEmbeddings
      ? null
      : this.registerModule('lm_head', new Linear({ inFeatures: config.wordEmbedProjDim, outFeatures: config.vocabSize, bias: false }));
    this.info = {
      modelType: 'opt',
      vocabSize: config.vocabSize,
      hiddenSize: config.hiddenSize,
      embedDim: config.wordEmbedProjDim,
      numLayers: config.numHiddenLayers,
      numHeads: config.numAttentionHeads,
      numKeyValueHeads: config.numAttentionHeads,
      headDim: config.hiddenSize / config.numAttentionHeads,
      maxPositions: config.maxPositionEmbeddings,
      bosTokenId: config.bosTokenId,
      eosTokenIds: config.eosTokenIds,
      padTokenId: config.padTokenId,
      tiedEmbeddings: config.tieWordEmbeddings,
    };
  }

  /** The layers `model.decoder.layers.{i}`. */
  get layers(): readonly OPTDecoderLayer[] {
    return this.model.decoder.layers.modules;
  }

  get tokenEmbeddingTable(): tf.Variable {
    return this.model.decoder.embed_tokens.weight;
  }

  embedTokens(inputIds: tf.Tensor): tf.Tensor {
    return this.model.decoder.embed_tokens.forward(inputIds);
  }

  embedInputs(inputsEmbeds: tf.Tensor, context: DecoderLayerContext): tf.Tensor {
    const dec = this.model.decoder;
    return tf.tidy(() => {
      const x = dec.project_in ? dec.project_in.forward(inputsEmbeds) : inputsEmbeds;
      return tf.add(x, dec.embed_positions.forward(tf.add(context.positionIds, tf.scalar(OPT_POSITION_OFFSET, 'int32'))));
    });
  }

  finalNorm(hidden: tf.Tensor): tf.Tensor {
    const dec = this.model.decoder;
    return tf.tidy(() => {
      const h = dec.final_layer_norm ? dec.final_layer_norm.forward(hidden) : hidden;
      return dec.project_out ? dec.project_out.forward(h) : tf.clone(h);
    });
  }

  lmHead(hidden: tf.Tensor): tf.Tensor {
    return this.lm_head ? this.lm_head.forward(hidden) : tiedLogits(hidden, this.model.decoder.embed_tokens.weight);
  }

  checkpointKey(key: string): string | null {
    const k = key.startsWith('decoder.') ? `model.${key}` : key;
    if (k === 'lm_head.weight' && this.config.tieWordEmbeddings) return null;
    return k;
  }
}
