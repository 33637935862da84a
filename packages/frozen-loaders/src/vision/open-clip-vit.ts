import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Module, ModuleList, MultiHeadAttention, assertShape, gelu, normal } from '@vlm/core';
import { quickGelu } from './activations';
import { detectPrefix, loadFrozenWeights, type CheckpointWeights } from './checkpoint';
import { parseOpenClipVisionConfig, type OpenClipVisionConfig } from './open-clip-config';
import { PatchEmbedding, nchwToNhwc } from './patch-embedding';
import { clipPreprocessing, type ImagePreprocessing } from './preprocess';
import type { VisionEncoder } from './vision-encoder';
import { VitMlp } from './vit-mlp';

/** What {@link OpenClipVisionTransformer.forward} returns. */
export interface OpenClipVisionOutput {
  /** `[b, 1+N, W]`: the transformer output (CLS first), before `ln_post`. */
  preLnPost: tf.Tensor3D;
  /** `[b, 1+N, W]`: `ln_post` applied to every token (open_clip ≥ 2.23 / 3.x). */
  lnPost: tf.Tensor3D;
}

/** Which tokens the open_clip tower returns as a {@link VisionEncoder}. */
export interface OpenClipVisionEncoderOptions {
  /**
   * `'ln_post'`: `ln_post(x)[:, 1:]`, what open_clip 3.x returns and the flamingo_e2e goldens'
   * `vision_features`; `'pre_ln_post'`: the raw transformer tokens, what open_clip 2.1x–2.2x
   * returned to OpenFlamingo when it was trained. Default: `'pre_ln_post'` if the config has
   * `final_ln_after_pool: true`, else `'ln_post'`.
   */
  tokens?: 'ln_post' | 'pre_ln_post';
  /** Keep the CLS token. Default: only with `pool_type: "none"` (as open_clip). */
  includeCls?: boolean;
}

class ResidualAttentionBlock extends Module {
  readonly ln1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly ln2: LayerNorm;
  readonly mlp: VitMlp;
  constructor(cfg: OpenClipVisionConfig) {
    super();
    const act = cfg.quickGelu ? quickGelu : (x: tf.Tensor) => gelu(x, 'none');
    this.ln1 = this.registerModule('ln_1', new LayerNorm({ dim: cfg.width, eps: cfg.layerNormEps }));
    this.attn = this.registerModule('attn', new MultiHeadAttention({ embedDim: cfg.width, numHeads: cfg.heads }));
    this.ln2 = this.registerModule('ln_2', new LayerNorm({ dim: cfg.width, eps: cfg.layerNormEps }));
    this.mlp = this.registerModule('mlp', new VitMlp({ dim: cfg.width, hiddenDim: cfg.mlpWidth, activation: act, names: ['c_fc', 'c_proj'] }));
  }

  forward(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const n = this.ln1.forward(x);
      const h = tf.add(x, this.attn.forward(n, n, n));
      return tf.add(h, this.mlp.forward(this.ln2.forward(h))) as tf.Tensor3D;
    });
  }
}

class Transformer extends Module {
  readonly resblocks: ModuleList<ResidualAttentionBlock>;
  constructor(cfg: OpenClipVisionConfig) {
    super();
    this.resblocks = this.registerModule('resblocks', new ModuleList(Array.from({ length: cfg.layers }, () => new ResidualAttentionBlock(cfg))));
  }
}

/**
 * open_clip's `VisionTransformer` (`clip.visual`), as OpenFlamingo checkpoints carry it under
 * `vision_encoder.*`: `conv1` (no bias), `class_embedding`, `positional_embedding`, `ln_pre`,
 * `transformer.resblocks.{i}` with `torch.nn.MultiheadAttention` weights (`attn.in_proj_weight`
 * …), `mlp.c_fc` / `mlp.c_proj`, `ln_post`; QuickGELU or exact GELU. `proj` is not used (OpenFlamingo
 * feeds the resampler the patch tokens). Load with {@link loadOpenClipVisionTransformer} (frozen).
 *
 * @example
 * ```ts
 * const vit = loadOpenClipVisionTransformer({ config: openClipConfig, weights }); // keys under vision_encoder.
 * vit.encode(pixelValues).shape; // NCHW [2, 3, 224, 224] → [2, 256, 1024] for ViT-L/14
 * ```
 */
export class OpenClipVisionTransformer extends Module implements VisionEncoder {
  /** The parsed config the tower was built from. */
  readonly config: OpenClipVisionConfig;
  /** The patch embedding, open_clip's `conv1` (`nn.Conv2d(3, W, P, stride=P, bias=False)`; key `conv1.weight` `[W, 3, P, P]`). */
  readonly conv1: PatchEmbedding;
  /** LayerNorm on the embedded tokens before the blocks (`ln_pre.{weight,bias}` `[W]`), or `null` with `no_ln_pre`. */
  readonly lnPre: LayerNorm | null;
  /** The residual attention blocks (`transformer.resblocks.{i}.*`). @internal */
  readonly transformer: Transformer;
  /** The final LayerNorm (`ln_post.{weight,bias}` `[W]`), applied to every token for {@link OpenClipVisionOutput.lnPost}. */
  readonly lnPost: LayerNorm;
  /** The token options with defaults resolved from the config: what {@link OpenClipVisionTransformer.encode} returns. */
  readonly tokenOptions: Required<OpenClipVisionEncoderOptions>;
  readonly inputLayout = 'NCHW' as const;
  readonly preprocessing: ImagePreprocessing;

  constructor(config: OpenClipVisionConfig, tokens: OpenClipVisionEncoderOptions = {}) {
    super();
    this.config = config;
    const w = config.width;
    const n = (config.imageSize / config.patchSize) ** 2;
    this.registerParameter('class_embedding', { shape: [w], init: () => normal([w], w ** -0.5) });
    this.registerParameter('positional_embedding', { shape: [n + 1, w], init: () => normal([n + 1, w], w ** -0.5) });
    this.conv1 = this.registerModule('conv1', new PatchEmbedding({ inChannels: 3, embedDim: w, patchSize: config.patchSize }));
    this.lnPre = config.noLnPre ? null : this.registerModule('ln_pre', new LayerNorm({ dim: w, eps: config.layerNormEps }));
    this.transformer = this.registerModule('transformer', new Transformer(config));
    this.lnPost = this.registerModule('ln_post', new LayerNorm({ dim: w, eps: config.layerNormEps }));
    this.tokenOptions = {
      tokens: tokens.tokens ?? (config.finalLnAfterPool ? 'pre_ln_post' : 'ln_post'),
      includeCls: tokens.includeCls ?? config.poolType === 'none',
    };
    this.preprocessing = clipPreprocessing(config.imageSize);
  }

  get name(): string {
    return `open_clip ViT (${this.tokenOptions.tokens}${this.tokenOptions.includeCls ? '' : ', no CLS'})`;
  }

  get tokenWidth(): number {
    return this.config.width;
  }

  get numTokens(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2 + (this.tokenOptions.includeCls ? 1 : 0);
  }

  /** NCHW `[b, 3, H, W]` → every token (CLS first) before and after `ln_post`. */
  forward(pixelValues: tf.Tensor): OpenClipVisionOutput {
    assertShape(pixelValues, [null, 3, null, null], 'open_clip pixel values (NCHW)', ['batch', 'channels', 'height', 'width']);
    return tf.tidy(() => {
      const patches = this.conv1.forward(nchwToNhwc(pixelValues));
      const [b, n, w] = patches.shape;
      const pos = this.parameter('positional_embedding');
      if (n + 1 !== pos.shape[0]) {
        throw new Error(`open_clip ViT: expected ${this.config.imageSize}×${this.config.imageSize} images, got ${pixelValues.shape[2]}×${pixelValues.shape[3]}`);
      }
      const cls = tf.tile(tf.reshape(this.parameter('class_embedding'), [1, 1, w]), [b, 1, 1]); // (broadcastTo keeps 1 row for b = 0)
      let x = tf.add(tf.concat([cls, patches], 1), pos) as tf.Tensor3D;
      if (this.lnPre) x = this.lnPre.forward(x) as tf.Tensor3D;
      for (const block of this.transformer.resblocks) x = block.forward(x);
      return { preLnPost: x, lnPost: this.lnPost.forward(x) as tf.Tensor3D };
    });
  }

  /** The tokens chosen by the load options: NCHW `[b, 3, H, W]` → `[b, N (+1), W]`. */
  encode(pixelValues: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const out = this.forward(pixelValues);
      const x = this.tokenOptions.tokens === 'ln_post' ? out.lnPost : out.preLnPost;
      return this.tokenOptions.includeCls ? x : (tf.slice(x, [0, 1, 0], [-1, -1, -1]) as tf.Tensor3D);
    });
  }
}

/** Options of {@link loadOpenClipVisionTransformer}. */
export interface LoadOpenClipOptions extends OpenClipVisionEncoderOptions {
  /**
   * Key prefix of the tower in the checkpoint. Default: detected, the first of
   * `'vision_encoder.'` (OpenFlamingo), `'visual.'` (an open_clip CLIP) that occurs, else none.
   */
  prefix?: string;
  /**
   * Override the config's `quick_gelu` (open_clip 2.1x–2.2x built `pretrained='openai'` towers
   * with QuickGELU whatever the config said). Default: the config's.
   */
  quickGelu?: boolean;
}

/**
 * Loads a frozen open_clip ViT from an open_clip model config (`{ embed_dim, quick_gelu,
 * vision_cfg }`) and a safetensors checkpoint holding its keys: an OpenFlamingo state dict
 * (`vision_encoder.*`), an open_clip CLIP (`visual.*`) or the tower alone. Keys outside the
 * prefix are not read; `proj` and `attn_pool`-free extras are skipped. Missing or unexpected keys
 * under the prefix throw one error listing them.
 *
 * @example
 * ```ts
 * const vit = loadOpenClipVisionTransformer({ config: sidecar.open_clip_config, weights: readFileSync('flamingo.safetensors') });
 * vit.encode(visionX).shape; // [B·T, 16, 32]: ln_post(x)[:, 1:]
 * ```
 */
export function loadOpenClipVisionTransformer(
  checkpoint: { config: string | Record<string, unknown>; weights: CheckpointWeights },
  options: LoadOpenClipOptions = {},
): OpenClipVisionTransformer {
  const cfg = parseOpenClipVisionConfig(checkpoint.config, options.quickGelu);
  return loadFrozenWeights(() => new OpenClipVisionTransformer(cfg, options), checkpoint.weights, {
    prefix: options.prefix ?? detectPrefix(checkpoint.weights, ['vision_encoder.', 'visual.']),
    ignore: ['proj'],
    what: 'loadOpenClipVisionTransformer',
  });
}
