import * as tf from '@tensorflow/tfjs-core';
import { Embedding, LayerNorm, Linear, Module, ModuleList, type DecoderLayerContext, type LayerKV } from '@vlm/core';
import { applyActivation } from './activation';
import { cachedSelfAttention } from './cached-attention';
import { CausalLM, type CausalLMInfo } from './causal-lm';
import { Conv1D } from './conv1d';
import type { GPT2Config } from './gpt2-config';
import { tiedLogits } from './tied-logits';

/**
 * GPT-2 self-attention: `c_attn` (Conv1D, columns `[q | k | v]`) and `c_proj`.
 *
 * @example
 * ```ts
 * const attn = new GPT2Attention(cfg, 0); // cfg.nEmbd = 32
 * attn.forward(x, decoderContext({ batch: 2, queries: 7 })).output.shape; // [2, 7, 32] for x [2, 7, 32]
 * ```
 */
export class GPT2Attention extends Module {
  /** Fused q/k/v projection (Conv1D, `weight` `[D, 3D]`, output columns `[q | k | v]`); D = `nEmbd`. */
  readonly c_attn: Conv1D;
  /** Output projection (Conv1D, `weight` `[D, D]`) applied to the merged heads. */
  readonly c_proj: Conv1D;
  private readonly scale: number;

  constructor(
    /** The model config. */
    readonly config: GPT2Config,
    /** 0-based index of the block (`h.{layerIdx}`); divides the logits when `scaleAttnByInverseLayerIdx`. */
    readonly layerIdx: number,
  ) {
    super();
    const d = config.nEmbd;
    this.c_attn = this.registerModule('c_attn', new Conv1D({ inFeatures: d, outFeatures: 3 * d }));
    this.c_proj = this.registerModule('c_proj', new Conv1D({ inFeatures: d, outFeatures: d }));
    const headDim = d / config.nHead;
    this.scale = (config.scaleAttnWeights ? 1 / Math.sqrt(headDim) : 1) / (config.scaleAttnByInverseLayerIdx ? layerIdx + 1 : 1);
  }

  /** `[b, t, D]` → `[b, t, D]` and the layer's cache entry. */
  forward(x: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): {
    /** Attention output after `c_proj` `[batch, tokens, D]`. */
    output: tf.Tensor;
    /** The layer's next cache entry: `past` plus these tokens' keys and values, each `[batch, past + tokens, D]`. */
    present: LayerKV;
  } {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(this.c_attn.forward(x), 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
      const { output, present } = cachedSelfAttention(q, k, v, { heads: this.config.nHead, scale: this.scale, allowed: context.allowed, past });
      return { output: this.c_proj.forward(output), present } as unknown as tf.TensorContainer;
    }) as unknown as { output: tf.Tensor; present: LayerKV };
  }
}

/**
 * GPT-2 MLP: `c_proj(act(c_fc(x)))`, both Conv1D.
 *
 * @example
 * ```ts
 * new GPT2MLP(cfg).forward(tf.zeros([2, 7, 32])).shape; // [2, 7, 32]
 * ```
 */
export class GPT2MLP extends Module {
  /** Up projection (Conv1D, `weight` `[nEmbd, nInner]`). */
  readonly c_fc: Conv1D;
  /** Down projection (Conv1D, `weight` `[nInner, nEmbd]`). */
  readonly c_proj: Conv1D;

  constructor(
    /** The model config (`nEmbd`, `nInner`, `activationFunction`). */
    readonly config: GPT2Config,
  ) {
    super();
    this.c_fc = this.registerModule('c_fc', new Conv1D({ inFeatures: config.nEmbd, outFeatures: config.nInner }));
    this.c_proj = this.registerModule('c_proj', new Conv1D({ inFeatures: config.nInner, outFeatures: config.nEmbd }));
  }

  /** `[b, t, D] → [b, t, D]`. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.c_proj.forward(applyActivation(this.config.activationFunction, this.c_fc.forward(x))));
  }
}

/**
 * One pre-LN GPT-2 block (`h.{i}`): `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
 *
 * @example
 * ```ts
 * const { hidden, present } = new GPT2Block(cfg, 0).forward(tf.zeros([2, 7, 32]), decoderContext({ batch: 2, queries: 7 }));
 * hidden.shape; // [2, 7, 32]; present.key.shape: [2, 7, 32]
 * ```
 */
export class GPT2Block extends Module {
  /** LayerNorm before the attention (`[nEmbd]`, eps `layerNormEpsilon`). */
  readonly ln_1: LayerNorm;
  /** The block's causal self-attention. */
  readonly attn: GPT2Attention;
  /** LayerNorm before the MLP (`[nEmbd]`, eps `layerNormEpsilon`). */
  readonly ln_2: LayerNorm;
  /** The block's MLP. */
  readonly mlp: GPT2MLP;

  constructor(config: GPT2Config, layerIdx: number) {
    super();
    const ln = () => new LayerNorm({ dim: config.nEmbd, eps: config.layerNormEpsilon });
    this.ln_1 = this.registerModule('ln_1', ln());
    this.attn = this.registerModule('attn', new GPT2Attention(config, layerIdx));
    this.ln_2 = this.registerModule('ln_2', ln());
    this.mlp = this.registerModule('mlp', new GPT2MLP(config));
  }

  /** `[b, t, D] → [b, t, D]` and the layer's cache entry. */
  forward(x: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): {
    /** Block output `[batch, tokens, D]`. */
    hidden: tf.Tensor;
    /** The layer's next cache entry: `past` plus these tokens' keys and values, each `[batch, past + tokens, D]`. */
    present: LayerKV;
  } {
    return tf.tidy(() => {
      const { output, present } = this.attn.forward(this.ln_1.forward(x), context, past);
      const h = tf.add(x, output);
      return { hidden: tf.add(h, this.mlp.forward(this.ln_2.forward(h))), present } as unknown as tf.TensorContainer;
    }) as unknown as { hidden: tf.Tensor; present: LayerKV };
  }
}

/**
 * The GPT-2 body (`GPT2Model`): `wte`, `wpe`, `h`, `ln_f`.
 *
 * @example
 * ```ts
 * Object.keys(new GPT2Model(cfg).stateDictShapes())[0]; // 'wte.weight' ([vocab, 32])
 * ```
 */
export class GPT2Model extends Module {
  /** Token embeddings, `weight` `[vocabSize, nEmbd]`. */
  readonly wte: Embedding;
  /** Learned absolute position embeddings, `weight` `[nPositions, nEmbd]`. */
  readonly wpe: Embedding;
  /** The `nLayer` blocks, in order. */
  readonly h: ModuleList<GPT2Block>;
  /** Final LayerNorm after the last block. */
  readonly ln_f: LayerNorm;

  constructor(config: GPT2Config) {
    super();
    this.wte = this.registerModule('wte', new Embedding({ numEmbeddings: config.vocabSize, embeddingDim: config.nEmbd }));
    this.wpe = this.registerModule('wpe', new Embedding({ numEmbeddings: config.nPositions, embeddingDim: config.nEmbd }));
    this.h = this.registerModule('h', new ModuleList(Array.from({ length: config.nLayer }, (_, i) => new GPT2Block(config, i))));
    this.ln_f = this.registerModule('ln_f', new LayerNorm({ dim: config.nEmbd, eps: config.layerNormEpsilon }));
  }
}

/**
 * GPT-2 with its LM head, as Hugging Face's `GPT2LMHeadModel` (same state-dict keys:
 * `transformer.wte.weight`, `transformer.h.{i}.attn.c_attn.weight` `[D, 3D]`, …; the head is
 * tied to `wte` unless `tie_word_embeddings: false`, then `lm_head.weight`). Learned absolute
 * positions (`wpe`) are added to `inputsEmbeds` too.
 *
 * @example
 * ```ts
 * const lm = new GPT2LMHeadModel(parseGPT2Config(json));
 * lm.forward({ inputIds: tf.tensor2d([[1, 2, 3]], undefined, 'int32') }).logits.shape; // [1, 3, 97]
 * ```
 */
export class GPT2LMHeadModel extends CausalLM {
  readonly hfClass = 'GPT2LMHeadModel';
  readonly info: CausalLMInfo;
  /** The GPT-2 body (state-dict prefix `transformer.`). */
  readonly transformer: GPT2Model;
  /** Untied LM head `[nEmbd → vocabSize]`, no bias; `null` when `tieWordEmbeddings` (logits then use `wte`). */
  readonly lm_head: Linear | null;

  constructor(
    /** The model config. */
    readonly config: GPT2Config,
  ) {
    super();
    this.transformer = this.registerModule('transformer', new GPT2Model(config));
    this.lm_head = config.tieWordEmbeddings ? null : this.registerModule('lm_head', new Linear({ inFeatures: config.nEmbd, outFeatures: config.vocabSize, bias: false }));
    this.info = {
      modelType: 'gpt2',
      vocabSize: config.vocabSize,
      hiddenSize: config.nEmbd,
      embedDim: config.nEmbd,
      numLayers: config.nLayer,
      numHeads: config.nHead,
      numKeyValueHeads: config.nHead,
      headDim: config.nEmbd / config.nHead,
      maxPositions: config.nPositions,
      bosTokenId: config.bosTokenId,
      eosTokenIds: config.eosTokenIds,
      padTokenId: config.padTokenId,
      tiedEmbeddings: config.tieWordEmbeddings,
    };
  }

  /** The blocks `transformer.h.{i}`. */
  get layers(): readonly GPT2Block[] {
    return this.transformer.h.modules;
  }

  get tokenEmbeddingTable(): tf.Variable {
    return this.transformer.wte.weight;
  }

  embedTokens(inputIds: tf.Tensor): tf.Tensor {
    return this.transformer.wte.forward(inputIds);
  }

  embedInputs(inputsEmbeds: tf.Tensor, context: DecoderLayerContext): tf.Tensor {
    return tf.tidy(() => tf.add(inputsEmbeds, this.transformer.wpe.forward(context.positionIds)));
  }

  finalNorm(hidden: tf.Tensor): tf.Tensor {
    return this.transformer.ln_f.forward(hidden);
  }

  lmHead(hidden: tf.Tensor): tf.Tensor {
    return this.lm_head ? this.lm_head.forward(hidden) : tiedLogits(hidden, this.transformer.wte.weight);
  }

  checkpointKey(key: string): string | null {
    const k = /^(wte|wpe|h|ln_f)\./.test(key) ? `transformer.${key}` : key;
    if (/^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/.test(k)) return null; // causal-mask buffers
    if (k === 'lm_head.weight' && this.config.tieWordEmbeddings) return null;
    return k;
  }
}
