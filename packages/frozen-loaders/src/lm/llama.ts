import * as tf from '@tensorflow/tfjs-core';
import { Embedding, Linear, Module, ModuleList, type DecoderLayerContext, type LayerKV } from '@vlm/core';
import { applyActivation } from './activation';
import { cachedSelfAttention } from './cached-attention';
import { CausalLM, type CausalLMInfo } from './causal-lm';
import type { LlamaConfig } from './llama-config';
import { RMSNorm } from './rms-norm';
import { applyRotary, rotaryCosSin, type RotaryLayerContext } from './rotary';
import { tiedLogits } from './tied-logits';

/**
 * LLaMA self-attention: `q_proj`, `k_proj`, `v_proj`, `o_proj`, RoPE on q and k, grouped-query attention.
 *
 * @example
 * ```ts
 * const { output, present } = new LlamaAttention(cfg).forward(tf.zeros([2, 7, 48]), decoderContext({ batch: 2, queries: 7 }));
 * output.shape; // [2, 7, 48]; present.key.shape: [2, 7, kvHeads·headDim] = [2, 7, 24]
 * ```
 */
export class LlamaAttention extends Module {
  /** Query projection `[hiddenSize → numAttentionHeads·headDim]` (bias if `attentionBias`). */
  readonly q_proj: Linear;
  /** Key projection `[hiddenSize → numKeyValueHeads·headDim]` (bias if `attentionBias`). */
  readonly k_proj: Linear;
  /** Value projection `[hiddenSize → numKeyValueHeads·headDim]` (bias if `attentionBias`). */
  readonly v_proj: Linear;
  /** Output projection `[numAttentionHeads·headDim → hiddenSize]` (bias if `attentionBias`). */
  readonly o_proj: Linear;

  constructor(
    /** The model config (heads, `headDim`, `ropeTheta`, `attentionBias`). */
    readonly config: LlamaConfig,
  ) {
    super();
    const { hiddenSize: d, headDim, numAttentionHeads: h, numKeyValueHeads: kv, attentionBias: bias } = config;
    this.q_proj = this.registerModule('q_proj', new Linear({ inFeatures: d, outFeatures: h * headDim, bias }));
    this.k_proj = this.registerModule('k_proj', new Linear({ inFeatures: d, outFeatures: kv * headDim, bias }));
    this.v_proj = this.registerModule('v_proj', new Linear({ inFeatures: d, outFeatures: kv * headDim, bias }));
    this.o_proj = this.registerModule('o_proj', new Linear({ inFeatures: h * headDim, outFeatures: d, bias }));
  }

  /** `[b, t, D]` → `[b, t, D]` and the layer's cache entry (rotated keys). */
  forward(x: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): {
    /** Attention output after `o_proj` `[batch, tokens, D]`. */
    output: tf.Tensor;
    /** The layer's next cache entry: `past` plus these tokens' rotated keys and values, each `[batch, past + tokens, numKeyValueHeads·headDim]`. */
    present: LayerKV;
  } {
    const { numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim, ropeTheta } = this.config;
    return tf.tidy(() => {
      // A context from CausalLM.forward carries the tables; one from core's runDecoder does not.
      const rotary = (context as RotaryLayerContext).rotary ?? rotaryCosSin(context.positionIds, headDim, ropeTheta);
      const q = applyRotary(this.q_proj.forward(x), rotary, heads);
      const k = applyRotary(this.k_proj.forward(x), rotary, kvHeads);
      const { output, present } = cachedSelfAttention(q, k, this.v_proj.forward(x), { heads, kvHeads, allowed: context.allowed, past });
      return { output: this.o_proj.forward(output), present } as unknown as tf.TensorContainer;
    }) as unknown as { output: tf.Tensor; present: LayerKV };
  }
}

/**
 * LLaMA MLP: `down_proj(act(gate_proj(x)) · up_proj(x))`.
 *
 * @example
 * ```ts
 * new LlamaMLP(cfg).forward(tf.zeros([2, 7, 48])).shape; // [2, 7, 48]
 * ```
 */
export class LlamaMLP extends Module {
  /** Gate projection `[hiddenSize → intermediateSize]`, passed through `hiddenAct` (bias if `mlpBias`). */
  readonly gate_proj: Linear;
  /** Up projection `[hiddenSize → intermediateSize]`, multiplied by the activated gate (bias if `mlpBias`). */
  readonly up_proj: Linear;
  /** Down projection `[intermediateSize → hiddenSize]` (bias if `mlpBias`). */
  readonly down_proj: Linear;

  constructor(
    /** The model config (`hiddenSize`, `intermediateSize`, `hiddenAct`, `mlpBias`). */
    readonly config: LlamaConfig,
  ) {
    super();
    const { hiddenSize: d, intermediateSize: i, mlpBias: bias } = config;
    this.gate_proj = this.registerModule('gate_proj', new Linear({ inFeatures: d, outFeatures: i, bias }));
    this.up_proj = this.registerModule('up_proj', new Linear({ inFeatures: d, outFeatures: i, bias }));
    this.down_proj = this.registerModule('down_proj', new Linear({ inFeatures: i, outFeatures: d, bias }));
  }

  /** `[b, t, D] → [b, t, D]`. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      this.down_proj.forward(tf.mul(applyActivation(this.config.hiddenAct, this.gate_proj.forward(x)), this.up_proj.forward(x))),
    );
  }
}

/**
 * One LLaMA decoder layer: `x + attn(input_layernorm(x))`, then `x + mlp(post_attention_layernorm(x))`.
 *
 * @example
 * ```ts
 * new LlamaDecoderLayer(cfg).forward(tf.zeros([2, 7, 48]), decoderContext({ batch: 2, queries: 7 })).hidden.shape; // [2, 7, 48]
 * ```
 */
export class LlamaDecoderLayer extends Module {
  /** The layer's causal self-attention. */
  readonly self_attn: LlamaAttention;
  /** The layer's gated MLP. */
  readonly mlp: LlamaMLP;
  /** RMSNorm before the attention (`[hiddenSize]`, eps `rmsNormEps`). */
  readonly input_layernorm: RMSNorm;
  /** RMSNorm before the MLP (`[hiddenSize]`, eps `rmsNormEps`). */
  readonly post_attention_layernorm: RMSNorm;

  constructor(config: LlamaConfig) {
    super();
    this.self_attn = this.registerModule('self_attn', new LlamaAttention(config));
    this.mlp = this.registerModule('mlp', new LlamaMLP(config));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm({ dim: config.hiddenSize, eps: config.rmsNormEps }));
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', new RMSNorm({ dim: config.hiddenSize, eps: config.rmsNormEps }));
  }

  /** `[b, t, D] → [b, t, D]` and the layer's cache entry. */
  forward(x: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): {
    /** Layer output `[batch, tokens, D]`. */
    hidden: tf.Tensor;
    /** The layer's next cache entry: `past` plus these tokens' rotated keys and values, each `[batch, past + tokens, numKeyValueHeads·headDim]`. */
    present: LayerKV;
  } {
    return tf.tidy(() => {
      const a = this.self_attn.forward(this.input_layernorm.forward(x), context, past);
      const h = tf.add(x, a.output);
      return { hidden: tf.add(h, this.mlp.forward(this.post_attention_layernorm.forward(h))), present: a.present } as unknown as tf.TensorContainer;
    }) as unknown as { hidden: tf.Tensor; present: LayerKV };
  }
}

/**
 * The LLaMA body (`LlamaModel`): `embed_tokens`, `layers`, `norm`.
 *
 * @example
 * ```ts
 * new LlamaModel(cfg).stateDictShapes()['norm.weight']; // [48]
 * ```
 */
export class LlamaModel extends Module {
  /** Token embeddings, `weight` `[vocabSize, hiddenSize]`. */
  readonly embed_tokens: Embedding;
  /** The `numHiddenLayers` decoder layers, in order. */
  readonly layers: ModuleList<LlamaDecoderLayer>;
  /** Final RMSNorm after the last layer. */
  readonly norm: RMSNorm;

  constructor(config: LlamaConfig) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding({ numEmbeddings: config.vocabSize, embeddingDim: config.hiddenSize }));
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new LlamaDecoderLayer(config))));
    this.norm = this.registerModule('norm', new RMSNorm({ dim: config.hiddenSize, eps: config.rmsNormEps }));
  }
}

/**
 * LLaMA-family decoder with its LM head, as Hugging Face's `LlamaForCausalLM` (keys `model.*`
 * and `lm_head.weight`, absent when `tie_word_embeddings`): RMSNorm, rotary embeddings
 * (`rope_theta`), grouped-query attention, SiLU-gated MLP. The KV cache holds rotated keys.
 *
 * @example
 * ```ts
 * const lm = new LlamaForCausalLM(parseLlamaConfig(json));
 * lm.forward({ inputIds: tf.tensor2d([[1, 5, 9]], undefined, 'int32') }).logits.shape; // [1, 3, 101]
 * ```
 */
export class LlamaForCausalLM extends CausalLM {
  readonly hfClass = 'LlamaForCausalLM';
  readonly info: CausalLMInfo;
  /** The LLaMA body (state-dict prefix `model.`). */
  readonly model: LlamaModel;
  /** Untied LM head `[hiddenSize → vocabSize]`, no bias; `null` when `tieWordEmbeddings` (logits then use `embed_tokens`). */
  readonly lm_head: Linear | null;

  constructor(
    /** The model config. */
    readonly config: LlamaConfig,
  ) {
    super();
    this.model = this.registerModule('model', new LlamaModel(config));
    this.lm_head = config.tieWordEmbeddings
      ? null
      : this.registerModule('lm_head', new Linear({ inFeatures: config.hiddenSize, outFeatures: config.vocabSize, bias: false }));
    this.info = {
      modelType: 'llama',
      vocabSize: config.vocabSize,
      hiddenSize: config.hiddenSize,
      embedDim: config.hiddenSize,
      numLayers: config.numHiddenLayers,
      numHeads: config.numAttentionHeads,
      numKeyValueHeads: config.numKeyValueHeads,
      headDim: config.headDim,
      bosTokenId: config.bosTokenId,
      eosTokenIds: config.eosTokenIds,
      padTokenId: config.padTokenId,
      tiedEmbeddings: config.tieWordEmbeddings,
    };
  }

  /**
   * Run RoPE past `max_position_embeddings` (extrapolation, with no guarantee on quality).
   * Default: `false`, a forward over more positions throws.
   */
  allowLongerSequences = false;

  override get maxPositions(): number | undefined {
    return this.allowLongerSequences ? undefined : this.config.maxPositionEmbeddings;
  }

  /** The layers `model.layers.{i}`. */
  get layers(): readonly LlamaDecoderLayer[] {
    return this.model.layers.modules;
  }

  get tokenEmbeddingTable(): tf.Variable {
    return this.model.embed_tokens.weight;
  }

  embedTokens(inputIds: tf.Tensor): tf.Tensor {
    return this.model.embed_tokens.forward(inputIds);
  }

  embedInputs(inputsEmbeds: tf.Tensor, _context: DecoderLayerContext): tf.Tensor {
    return tf.clone(inputsEmbeds);
  }

  protected override prepareContext(context: DecoderLayerContext): RotaryLayerContext {
    return { ...context, rotary: rotaryCosSin(context.positionIds, this.config.headDim, this.config.ropeTheta) };
  }

  finalNorm(hidden: tf.Tensor): tf.Tensor {
    return this.model.norm.forward(hidden);
  }

  lmHead(hidden: tf.Tensor): tf.Tensor {
    return this.lm_head ? this.lm_head.forward(hidden) : tiedLogits(hidden, this.model.embed_tokens.weight);
  }

  checkpointKey(key: string): string | null {
    const k = /^(embed_tokens|layers|norm)\./.test(key) ? `model.${key}` : key;
    if (/\.rotary_emb\.inv_freq$/.test(k)) return null;
    if (k === 'lm_head.weight' && this.config.tieWordEmbeddings) return null;
    return k;
  }
}
