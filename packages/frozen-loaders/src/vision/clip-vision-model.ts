import * as tf from '@tensorflow/tfjs-core';
import { Embedding, LayerNorm, Linear, Module, ModuleList, assertShape, normal, scaledDotProductAttention } from '@vlm/core';
import { visionActivationFn } from './activations';
import { checkpointKeys, loadFrozenWeights, type HfCheckpoint } from './checkpoint';
import { parseClipVisionConfig, type ClipVisionConfig } from './clip-vision-config';
import { PatchEmbedding, nchwToNhwc } from './patch-embedding';
import { clipPreprocessing, type ImagePreprocessing } from './preprocess';
import { resolveLayerIndex, type VisionEncoder, type VitTokenOptions } from './vision-encoder';
import { VitMlp } from './vit-mlp';

/** What {@link ClipVisionModel.forward} returns, as HF's `BaseModelOutputWithPooling`. */
export interface ClipVisionOutput {
  /** `[b, 1+N, D]`: the last layer's output, without post norm. */
  lastHiddenState: tf.Tensor3D;
  /** `[b, D]`: `post_layernorm(lastHiddenState[:, 0])`. */
  poolerOutput: tf.Tensor2D;
  /** L+1 tensors `[b, 1+N, D]` (0 = embeddings after `pre_layrnorm`) when asked for, else `[]`. */
  hiddenStates: tf.Tensor3D[];
}

/** Options of the CLIP tower as a {@link VisionEncoder}: which tokens `encode` returns. */
export interface ClipVisionEncoderOptions extends VitTokenOptions {
  /**
   * Apply `post_layernorm` to the returned tokens, as open_clip ≥ 2.23 does to its tokens
   * (OpenFlamingo's features from an open_clip tower converted to HF keys). Default: `false`
   * (HF's hidden states, as LLaVA uses them).
   */
  postLayerNorm?: boolean;
}

class ClipVisionEmbeddings extends Module {
  readonly patchEmbedding: PatchEmbedding;
  readonly positionEmbedding: Embedding;

  constructor(readonly cfg: ClipVisionConfig) {
    super();
    this.registerParameter('class_embedding', { shape: [cfg.hiddenSize], init: () => normal([cfg.hiddenSize]) });
    this.patchEmbedding = this.registerModule(
      'patch_embedding',
      new PatchEmbedding({ inChannels: cfg.numChannels, embedDim: cfg.hiddenSize, patchSize: cfg.patchSize }),
    );
    const n = (cfg.imageSize / cfg.patchSize) ** 2;
    this.positionEmbedding = this.registerModule('position_embedding', new Embedding({ numEmbeddings: n + 1, embeddingDim: cfg.hiddenSize }));
  }

  /** NHWC pixels → `[b, 1+N, D]`: CLS first, then patches row-major, plus positions. */
  forward(x: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const patches = this.patchEmbedding.forward(x);
      const [b, n, d] = patches.shape;
      const table = this.positionEmbedding.weight;
      if (n + 1 !== table.shape[0]) {
        const g = Math.sqrt(table.shape[0]! - 1) * this.cfg.patchSize;
        throw new Error(`CLIP vision: expected ${g}×${g} images (${table.shape[0]! - 1} patches), got ${x.shape[1]}×${x.shape[2]} (${n} patches)`);
      }
      const cls = tf.tile(tf.reshape(this.parameter('class_embedding'), [1, 1, d]), [b, 1, 1]); // (broadcastTo keeps 1 row for b = 0)
      return tf.add(tf.concat([cls, patches], 1), table) as tf.Tensor3D;
    });
  }
}

class ClipAttention extends Module {
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly qProj: Linear;
  readonly outProj: Linear;

  constructor(readonly cfg: ClipVisionConfig) {
    super();
    const d = cfg.hiddenSize;
    this.kProj = this.registerModule('k_proj', new Linear({ inFeatures: d, outFeatures: d }));
    this.vProj = this.registerModule('v_proj', new Linear({ inFeatures: d, outFeatures: d }));
    this.qProj = this.registerModule('q_proj', new Linear({ inFeatures: d, outFeatures: d }));
    this.outProj = this.registerModule('out_proj', new Linear({ inFeatures: d, outFeatures: d }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const o = scaledDotProductAttention(this.qProj.forward(x), this.kProj.forward(x), this.vProj.forward(x), {
        heads: this.cfg.numAttentionHeads,
      });
      return this.outProj.forward(o);
    });
  }
}

class ClipEncoderLayer extends Module {
  readonly selfAttn: ClipAttention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: VitMlp;
  readonly layerNorm2: LayerNorm;

  constructor(cfg: ClipVisionConfig) {
    super();
    this.selfAttn = this.registerModule('self_attn', new ClipAttention(cfg));
    this.layerNorm1 = this.registerModule('layer_norm1', new LayerNorm({ dim: cfg.hiddenSize, eps: cfg.layerNormEps }));
    this.mlp = this.registerModule(
      'mlp',
      new VitMlp({ dim: cfg.hiddenSize, hiddenDim: cfg.intermediateSize, activation: visionActivationFn(cfg.hiddenAct) }),
    );
    this.layerNorm2 = this.registerModule('layer_norm2', new LayerNorm({ dim: cfg.hiddenSize, eps: cfg.layerNormEps }));
  }

  forward(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const h = tf.add(x, this.selfAttn.forward(this.layerNorm1.forward(x)));
      return tf.add(h, this.mlp.forward(this.layerNorm2.forward(h))) as tf.Tensor3D;
    });
  }
}

class ClipEncoder extends Module {
  readonly layers: ModuleList<ClipEncoderLayer>;
  constructor(cfg: ClipVisionConfig) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: cfg.numHiddenLayers }, () => new ClipEncoderLayer(cfg))));
  }
}

class ClipVisionTransformer extends Module {
  readonly embeddings: ClipVisionEmbeddings;
  readonly preLayrnorm: LayerNorm;
  readonly encoder: ClipEncoder;
  readonly postLayernorm: LayerNorm;

  constructor(cfg: ClipVisionConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new ClipVisionEmbeddings(cfg));
    this.preLayrnorm = this.registerModule('pre_layrnorm', new LayerNorm({ dim: cfg.hiddenSize, eps: cfg.layerNormEps }));
    this.encoder = this.registerModule('encoder', new ClipEncoder(cfg));
    this.postLayernorm = this.registerModule('post_layernorm', new LayerNorm({ dim: cfg.hiddenSize, eps: cfg.layerNormEps }));
  }
}

/**
 * The CLIP vision tower of Hugging Face's `CLIPVisionModel`, with its exact state-dict keys
 * (`vision_model.embeddings.patch_embedding.weight`, `vision_model.encoder.layers.{i}.self_attn.q_proj.weight`,
 * `vision_model.pre_layrnorm.*` …). As a {@link VisionEncoder} it returns the hidden state and
 * tokens chosen at load time: OpenFlamingo takes the last layer's patch tokens
 * (`{ layer: -1 }`), LLaVA the penultimate layer without CLS (`{ layer: -2 }`).
 *
 * Load a checkpoint with {@link loadClipVisionModel}; the module is then frozen.
 *
 * @example
 * ```ts
 * const clip = loadClipVisionModel({ config, weights }, { layer: -2 }); // LLaVA features
 * const { lastHiddenState, poolerOutput } = clip.forward(pixelValues); // NCHW [2, 3, 224, 224]
 * lastHiddenState.shape; // [2, 257, 1024]; poolerOutput.shape: [2, 1024]
 * clip.encode(pixelValues).shape; // [2, 256, 1024]: layer -2, CLS dropped
 * ```
 */
export class ClipVisionModel extends Module implements VisionEncoder {
  /** The parsed config the tower was built from. */
  readonly config: ClipVisionConfig;
  /** The tower (`vision_model.*`): embeddings, pre-LN, encoder layers, post-LN. @internal */
  readonly visionModel: ClipVisionTransformer;
  /** The token options with defaults filled in (`layer: -1`, `includeCls: false`, `postLayerNorm: false`): what {@link ClipVisionModel.encode} returns. */
  readonly tokenOptions: Required<ClipVisionEncoderOptions>;
  readonly inputLayout = 'NCHW' as const;
  readonly preprocessing: ImagePreprocessing;

  constructor(config: ClipVisionConfig, tokens: ClipVisionEncoderOptions = {}) {
    super();
    this.config = config;
    this.visionModel = this.registerModule('vision_model', new ClipVisionTransformer(config));
    this.tokenOptions = { layer: tokens.layer ?? -1, includeCls: tokens.includeCls ?? false, postLayerNorm: tokens.postLayerNorm ?? false };
    resolveLayerIndex(this.tokenOptions.layer, config.numHiddenLayers, 'ClipVisionModel');
    this.preprocessing = clipPreprocessing(config.imageSize);
  }

  get name(): string {
    const t = this.tokenOptions;
    return `CLIP ViT (HF) layer ${t.layer}${t.includeCls ? '' : ', no CLS'}${t.postLayerNorm ? ', post-LN' : ''}`;
  }

  get tokenWidth(): number {
    return this.config.hiddenSize;
  }

  get numTokens(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2 + (this.tokenOptions.includeCls ? 1 : 0);
  }

  /**
   * HF `CLIPVisionModel.forward(pixel_values, output_hidden_states)`.
   * @param pixelValues NCHW `[b, C, H, W]`, normalised.
   */
  forward(pixelValues: tf.Tensor, options: { outputHiddenStates?: boolean } = {}): ClipVisionOutput {
    return tf.tidy(() => {
      const states = this.run(pixelValues, this.config.numHiddenLayers, options.outputHiddenStates ?? false);
      const last = states[states.length - 1]!;
      const cls = tf.squeeze(tf.slice(last, [0, 0, 0], [-1, 1, -1]), [1]);
      const pooled = this.visionModel.postLayernorm.forward(cls) as tf.Tensor2D;
      return { lastHiddenState: last, poolerOutput: pooled, hiddenStates: options.outputHiddenStates ? states : [] };
    });
  }

  /**
   * Hidden state `layer` (HF numbering; negative from the end), running only the layers needed.
   * @param pixelValues NCHW `[b, C, H, W]`.
   * @returns `[b, 1+N, D]`
   */
  hiddenState(pixelValues: tf.Tensor, layer: number): tf.Tensor3D {
    const i = resolveLayerIndex(layer, this.config.numHiddenLayers, 'ClipVisionModel.hiddenState');
    return tf.tidy(() => this.run(pixelValues, i, false).pop()!);
  }

  /** The tokens chosen by the load options: NCHW `[b, C, H, W]` → `[b, tokens, D]`. */
  encode(pixelValues: tf.Tensor): tf.Tensor3D {
    const { layer, includeCls, postLayerNorm } = this.tokenOptions;
    return tf.tidy(() => {
      let h: tf.Tensor3D = this.hiddenState(pixelValues, layer);
      if (postLayerNorm) h = this.visionModel.postLayernorm.forward(h) as tf.Tensor3D;
      return includeCls ? h : (tf.slice(h, [0, 1, 0], [-1, -1, -1]) as tf.Tensor3D);
    });
  }

  /** Runs embeddings and the first `upto` layers; returns every state or only the last. */
  private run(pixelValues: tf.Tensor, upto: number, keepAll: boolean): tf.Tensor3D[] {
    assertShape(pixelValues, [null, this.config.numChannels, null, null], 'CLIP pixel_values (NCHW)', ['batch', 'channels', 'height', 'width']);
    const vm = this.visionModel;
    let x = vm.preLayrnorm.forward(vm.embeddings.forward(nchwToNhwc(pixelValues))) as tf.Tensor3D;
    const states = [x];
    for (let i = 0; i < upto; i++) {
      x = vm.encoder.layers.get(i).forward(x);
      if (keepAll) states.push(x);
      else states[0] = x;
    }
    return states;
  }
}

/** Top-level modules of CLIP's vision tower, as `transformers` 5.x saves `CLIPVisionModel` (no `vision_model.` prefix). */
const TOWER_KEY = /^(embeddings|pre_layrnorm|encoder|post_layernorm)\./;

/**
 * Loads a frozen CLIP vision tower from a Hugging Face checkpoint: `config.json` plus
 * `model.safetensors` (or a sharded set), F32/F16/BF16. Reads only the tower's keys, in either
 * layout: `vision_model.*` (`transformers` 4.x `CLIPVisionModel`, and any whole `CLIPModel` or
 * `CLIPVisionModelWithProjection` checkpoint) or without the prefix (`embeddings.*`,
 * `encoder.*`, `pre_layrnorm.*`, `post_layernorm.*`: `CLIPVisionModel.save_pretrained` in
 * `transformers` 5.x). The old `position_ids` buffer is skipped. Missing or unexpected keys
 * throw one error that lists them; a config value it does not support throws, naming the field.
 *
 * @example
 * ```ts
 * const clip = loadClipVisionModel({ config: readFileSync('config.json', 'utf8'), weights: readFileSync('model.safetensors') });
 * clip.encode(pixelValues).shape; // [b, 256, 1024] for ViT-L/14 at 224: last layer, patch tokens
 * ```
 */
export function loadClipVisionModel(checkpoint: HfCheckpoint, tokens: ClipVisionEncoderOptions = {}): ClipVisionModel {
  const cfg = parseClipVisionConfig(checkpoint.config);
  const keys = checkpointKeys(checkpoint.weights);
  const prefixed = keys.some((k) => k.startsWith('vision_model.'));
  if (!prefixed && !keys.some((k) => TOWER_KEY.test(k))) {
    throw new Error(
      "loadClipVisionModel: expected a CLIP vision checkpoint ('vision_model.*' keys from transformers 4.x, or 'embeddings.*'/'encoder.*' keys from a transformers 5.x CLIPVisionModel), got one with neither",
    );
  }
  // The root module's own keys start with 'vision_model.'; a 5.x checkpoint's keys get it added.
  return loadFrozenWeights(() => new ClipVisionModel(cfg, tokens), checkpoint.weights, {
    prefix: '',
    ignore: prefixed ? [/^(?!vision_model\.)/, 'vision_model.embeddings.position_ids'] : [/^(?!(embeddings|pre_layrnorm|encoder|post_layernorm)\.)/, 'embeddings.position_ids'],
    rename: prefixed ? undefined : (k) => `vision_model.${k}`,
    what: 'loadClipVisionModel',
  });
}
