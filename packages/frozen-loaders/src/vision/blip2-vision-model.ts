import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Linear, Module, ModuleList, assertShape, linear, normal, scaledDotProductAttention, type StateDict } from '@vlm/core';
import { visionActivationFn } from './activations';
import { detectPrefix, loadFrozenWeights, type HfCheckpoint } from './checkpoint';
import { parseBlip2VisionConfig, type Blip2VisionConfig } from './blip2-vision-config';
import { PatchEmbedding, nchwToNhwc } from './patch-embedding';
import { blip2Preprocessing, type ImagePreprocessing } from './preprocess';
import { resolveLayerIndex, type VisionEncoder } from './vision-encoder';
import { VitMlp } from './vit-mlp';

/** What {@link Blip2VisionModel.forward} returns, as HF's `BaseModelOutputWithPooling`. */
export interface Blip2VisionOutput {
  /** `[b, 1+N, D]` = `post_layernorm(last layer output)`. */
  lastHiddenState: tf.Tensor3D;
  /** `[b, D]` = `post_layernorm(lastHiddenState[:, 0])` (post_layernorm applied twice, as HF). */
  poolerOutput: tf.Tensor2D;
  /** L+1 tensors `[b, 1+N, D]` when asked for (0 = embeddings; L = raw last layer, before post_layernorm), else `[]`. */
  hiddenStates: tf.Tensor3D[];
}

/** Which tokens the BLIP-2 tower returns as a {@link VisionEncoder}. */
export interface Blip2VisionEncoderOptions {
  /**
   * `'last_hidden_state'` (post-LN, what the Q-Former cross-attends to) or a hidden-state index
   * (HF numbering, negative from the end; no post-LN). Default: `'last_hidden_state'`.
   */
  layer?: 'last_hidden_state' | number;
  /** Keep the CLS token. Default: `true` (the Q-Former takes all 1+N tokens). */
  includeCls?: boolean;
}

class Blip2VisionEmbeddings extends Module {
  readonly patchEmbedding: PatchEmbedding;
  constructor(readonly cfg: Blip2VisionConfig) {
    super();
    const d = cfg.hiddenSize;
    const n = (cfg.imageSize / cfg.patchSize) ** 2;
    this.registerParameter('class_embedding', { shape: [1, 1, d], init: () => normal([1, 1, d]) });
    this.patchEmbedding = this.registerModule('patch_embedding', new PatchEmbedding({ inChannels: 3, embedDim: d, patchSize: cfg.patchSize, bias: true }));
    this.registerParameter('position_embedding', { shape: [1, n + 1, d], init: () => normal([1, n + 1, d]) });
  }

  forward(x: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const patches = this.patchEmbedding.forward(x);
      const [b, n] = patches.shape;
      const pos = this.parameter('position_embedding');
      if (n + 1 !== pos.shape[1]) {
        const g = Math.sqrt(pos.shape[1]! - 1) * this.cfg.patchSize;
        throw new Error(`BLIP-2 vision: expected ${g}×${g} images (${pos.shape[1]! - 1} patches), got ${x.shape[1]}×${x.shape[2]} (${n} patches)`);
      }
      const cls = tf.tile(this.parameter('class_embedding'), [b, 1, 1]); // (broadcastTo keeps 1 row for b = 0)
      return tf.add(tf.concat([cls, patches], 1), pos) as tf.Tensor3D;
    });
  }
}

/** EVA-style attention: fused `qkv` (bias = cat(q_bias, 0, v_bias)) and `projection`. */
class Blip2Attention extends Module {
  readonly qkv: Linear;
  readonly projection: Linear;
  constructor(readonly cfg: Blip2VisionConfig) {
    super();
    const d = cfg.hiddenSize;
    this.qkv = this.registerModule('qkv', new Linear({ inFeatures: d, outFeatures: 3 * d, bias: cfg.qkvBias }));
    this.projection = this.registerModule('projection', new Linear({ inFeatures: d, outFeatures: d }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(linear(x, this.qkv.kernel, this.qkv.bias), 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
      return this.projection.forward(scaledDotProductAttention(q, k, v, { heads: this.cfg.numAttentionHeads }));
    });
  }
}

class Blip2EncoderLayer extends Module {
  readonly selfAttn: Blip2Attention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: VitMlp;
  readonly layerNorm2: LayerNorm;
  constructor(cfg: Blip2VisionConfig) {
    super();
    this.selfAttn = this.registerModule('self_attn', new Blip2Attention(cfg));
    this.layerNorm1 = this.registerModule('layer_norm1', new LayerNorm({ dim: cfg.hiddenSize, eps: cfg.layerNormEps }));
    this.mlp = this.registerModule('mlp', new VitMlp({ dim: cfg.hiddenSize, hiddenDim: cfg.intermediateSize, activation: visionActivationFn(cfg.hiddenAct) }));
    this.layerNorm2 = this.registerModule('layer_norm2', new LayerNorm({ dim: cfg.hiddenSize, eps: cfg.layerNormEps }));
  }

  forward(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const h = tf.add(x, this.selfAttn.forward(this.layerNorm1.forward(x)));
      return tf.add(h, this.mlp.forward(this.layerNorm2.forward(h))) as tf.Tensor3D;
    });
  }
}

class Blip2Encoder extends Module {
  readonly layers: ModuleList<Blip2EncoderLayer>;
  constructor(cfg: Blip2VisionConfig) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: cfg.numHiddenLayers }, () => new Blip2EncoderLayer(cfg))));
  }
}

/**
 * BLIP-2's vision tower, Hugging Face's `Blip2VisionModel` (the EVA ViT-g design): patch
 * embedding with a bias, CLS and a learned position table, no pre-LN, pre-LN layers with a fused
 * `qkv` (its bias is `cat(q_bias, 0, v_bias)`), exact GELU, `post_layernorm`, eps 1e-6. State-dict
 * keys are HF's without a prefix (`embeddings.patch_embedding.weight`,
 * `encoder.layers.{i}.self_attn.qkv.weight` …); a whole BLIP-2 checkpoint holds them under
 * `vision_model.`. Load with {@link loadBlip2VisionModel} (frozen).
 *
 * @example
 * ```ts
 * const vit = loadBlip2VisionModel({ config, weights }); // Blip2VisionModel or Blip2ForConditionalGeneration files
 * const { lastHiddenState } = vit.forward(pixelValues); // NCHW [2, 3, 224, 224] → [2, 257, 1408]
 * vit.encode(pixelValues).shape; // [2, 257, 1408]: what the Q-Former attends to
 * ```
 */
export class Blip2VisionModel extends Module implements VisionEncoder {
  /** The parsed config the tower was built from. */
  readonly config: Blip2VisionConfig;
  /** Patch, class and position embeddings (`embeddings.*`). @internal */
  readonly embeddings: Blip2VisionEmbeddings;
  /** The transformer layers (`encoder.layers.{i}.*`). @internal */
  readonly encoder: Blip2Encoder;
  /** The final LayerNorm (HF `post_layernorm`, keys `post_layernorm.{weight,bias}` `[D]`), applied to `lastHiddenState` and again to the pooled CLS token. */
  readonly postLayernorm: LayerNorm;
  /** The token options with defaults filled in (`layer: 'last_hidden_state'`, `includeCls: true`): what {@link Blip2VisionModel.encode} returns. */
  readonly tokenOptions: Required<Blip2VisionEncoderOptions>;
  readonly inputLayout = 'NCHW' as const;
  readonly preprocessing: ImagePreprocessing;

  constructor(config: Blip2VisionConfig, tokens: Blip2VisionEncoderOptions = {}) {
    super();
    this.config = config;
    this.embeddings = this.registerModule('embeddings', new Blip2VisionEmbeddings(config));
    this.encoder = this.registerModule('encoder', new Blip2Encoder(config));
    this.postLayernorm = this.registerModule('post_layernorm', new LayerNorm({ dim: config.hiddenSize, eps: config.layerNormEps }));
    this.tokenOptions = { layer: tokens.layer ?? 'last_hidden_state', includeCls: tokens.includeCls ?? true };
    if (this.tokenOptions.layer !== 'last_hidden_state') resolveLayerIndex(this.tokenOptions.layer, config.numHiddenLayers, 'Blip2VisionModel');
    this.preprocessing = blip2Preprocessing(config.imageSize);
  }

  get name(): string {
    return `BLIP-2 ViT ${this.tokenOptions.layer}${this.tokenOptions.includeCls ? '' : ', no CLS'}`;
  }

  get tokenWidth(): number {
    return this.config.hiddenSize;
  }

  get numTokens(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2 + (this.tokenOptions.includeCls ? 1 : 0);
  }

  /** HF `Blip2VisionModel.forward(pixel_values, output_hidden_states)`; pixels NCHW `[b, 3, H, W]`. */
  forward(pixelValues: tf.Tensor, options: { outputHiddenStates?: boolean } = {}): Blip2VisionOutput {
    return tf.tidy(() => {
      const keep = options.outputHiddenStates ?? false;
      const states = this.run(pixelValues, this.config.numHiddenLayers, keep);
      const last = this.postLayernorm.forward(states[states.length - 1]!) as tf.Tensor3D;
      const cls = tf.squeeze(tf.slice(last, [0, 0, 0], [-1, 1, -1]), [1]);
      return { lastHiddenState: last, poolerOutput: this.postLayernorm.forward(cls) as tf.Tensor2D, hiddenStates: keep ? states : [] };
    });
  }

  /** Hidden state `layer` (HF numbering, negative from the end; no post-LN), running only the layers needed. */
  hiddenState(pixelValues: tf.Tensor, layer: number): tf.Tensor3D {
    const i = resolveLayerIndex(layer, this.config.numHiddenLayers, 'Blip2VisionModel.hiddenState');
    return tf.tidy(() => this.run(pixelValues, i, false).pop()!);
  }

  /** The tokens chosen by the load options: NCHW `[b, 3, H, W]` → `[b, tokens, D]`. */
  encode(pixelValues: tf.Tensor): tf.Tensor3D {
    const { layer, includeCls } = this.tokenOptions;
    return tf.tidy(() => {
      const h = layer === 'last_hidden_state' ? this.forward(pixelValues).lastHiddenState : this.hiddenState(pixelValues, layer);
      return includeCls ? h : (tf.slice(h, [0, 1, 0], [-1, -1, -1]) as tf.Tensor3D);
    });
  }

  private run(pixelValues: tf.Tensor, upto: number, keepAll: boolean): tf.Tensor3D[] {
    assertShape(pixelValues, [null, 3, null, null], 'BLIP-2 pixel_values (NCHW)', ['batch', 'channels', 'height', 'width']);
    let x = this.embeddings.forward(nchwToNhwc(pixelValues));
    const states = [x];
    for (let i = 0; i < upto; i++) {
      x = this.encoder.layers.get(i).forward(x);
      if (keepAll) states.push(x);
      else states[0] = x;
    }
    return states;
  }
}

/**
 * LAVIS / EVA checkpoints keep `attn.q_bias` and `attn.v_bias` apart; HF fuses them into
 * `qkv.bias = cat(q_bias, zeros, v_bias)`. Converts the former to the latter (disposing the
 * originals) and leaves HF keys alone.
 *
 * @example
 * ```ts
 * const dict = fuseQkvBias({ 'encoder.layers.0.self_attn.q_bias': q, 'encoder.layers.0.self_attn.v_bias': v });
 * dict['encoder.layers.0.self_attn.qkv.bias'].shape; // [3 * D]
 * ```
 */
export function fuseQkvBias(dict: StateDict): StateDict {
  const out: StateDict = { ...dict };
  for (const key of Object.keys(dict)) {
    const m = /^(.*)\.q_bias$/.exec(key);
    if (!m) continue;
    const vKey = `${m[1]}.v_bias`;
    const q = dict[key]!;
    const v = dict[vKey];
    if (!v) continue;
    out[`${m[1]}.qkv.bias`] = tf.tidy(() => tf.concat([q, tf.zerosLike(q), v]));
    delete out[key];
    delete out[vKey];
    tf.dispose([q, v]);
  }
  return out;
}

/**
 * Loads a frozen BLIP-2 vision tower from a Hugging Face checkpoint: a `Blip2VisionModel`
 * (keys without prefix) or a whole BLIP-2 model (`vision_model.*` keys; the Q-Former and LM
 * keys are not read), from `config.json` + `model.safetensors` (or shards), F32/F16/BF16.
 * Separate `q_bias`/`v_bias` are fused. Missing or unexpected keys throw one error listing them.
 *
 * @example
 * ```ts
 * const vit = loadBlip2VisionModel({ config: readFileSync('config.json', 'utf8'), weights: { index, shards } });
 * vit.encode(pixels).shape; // [b, 257, 1408]
 * ```
 */
export function loadBlip2VisionModel(checkpoint: HfCheckpoint, tokens: Blip2VisionEncoderOptions = {}): Blip2VisionModel {
  const cfg = parseBlip2VisionConfig(checkpoint.config);
  return loadFrozenWeights(() => new Blip2VisionModel(cfg, tokens), checkpoint.weights, {
    prefix: detectPrefix(checkpoint.weights, ['vision_model.']),
    remap: fuseQkvBias,
    remapKeys: (name) => /\.(q_bias|v_bias)$/.test(name),
    what: 'loadBlip2VisionModel',
  });
}
