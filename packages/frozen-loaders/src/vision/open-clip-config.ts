import { VisionConfigReader, parseConfigJson, unsupportedConfigValue } from './hf-config';

/** The open_clip `VisionTransformer` hyper-parameters this port uses (camelCased `vision_cfg`). */
export interface OpenClipVisionConfig {
  /** Side of the square input image in pixels (`image_size`; a square `[n, n]` pair is accepted). Default when absent: `224`. */
  imageSize: number;
  /** Side of each square patch in pixels (`patch_size`). Default when absent: `16`. */
  patchSize: number;
  /** Token width `W` (`width`). Default when absent: `768`. */
  width: number;
  /** Number of residual attention blocks (`layers`, an integer for a ViT). Default when absent: `12`. */
  layers: number;
  /** `width / head_width`. */
  heads: number;
  /** MLP hidden width, `int(width · mlp_ratio)`. */
  mlpWidth: number;
  /** From the model config's top-level `quick_gelu`: QuickGELU, else exact GELU. */
  quickGelu: boolean;
  /** `no_ln_pre`: skip `ln_pre`. */
  noLnPre: boolean;
  /** `final_ln_after_pool`: `ln_post` only on the pooled output, so the tokens are not normed. */
  finalLnAfterPool: boolean;
  /** `pool_type` (`'tok'`, `'avg'`, `'none'`); with `'none'` the tokens include CLS. */
  poolType: 'tok' | 'avg' | 'none';
  /** LayerNorm eps (`norm_kwargs.eps`, else 1e-5). */
  layerNormEps: number;
  /** `embed_dim`, the width of `proj` (unused by OpenFlamingo), when the model config gives it. */
  embedDim: number | null;
}

/**
 * Parses an open_clip model config (`{ embed_dim, quick_gelu, vision_cfg: {...} }`, as in
 * open_clip's `model_configs/*.json` or an OpenFlamingo golden's `open_clip_config`), or a bare
 * `vision_cfg`. Options this port does not implement (timm towers, ResNet `layers` lists,
 * attentional pooling, layer scale, patch norm, non-learnable position embeddings, custom
 * attention blocks) throw, naming the field.
 *
 * @example
 * ```ts
 * const cfg = parseOpenClipVisionConfig({ embed_dim: 768, quick_gelu: true, vision_cfg: { image_size: 224, layers: 24, width: 1024, patch_size: 14 } });
 * cfg.heads; // 16 (width / head_width 64)
 * ```
 */
export function parseOpenClipVisionConfig(config: string | Record<string, unknown>, quickGeluOverride?: boolean): OpenClipVisionConfig {
  const raw = parseConfigJson(config, 'open_clip config');
  const top = new VisionConfigReader(raw, 'open_clip config');
  const visionRaw = top.object('vision_cfg') ?? raw;
  const r = new VisionConfigReader(visionRaw, 'open_clip vision_cfg');
  if (Array.isArray(visionRaw.layers)) throw unsupportedConfigValue(r.what, 'layers', visionRaw.layers, 'an integer (a ViT; ResNet towers are not supported)');
  r.only('timm_model_name', [], 'null (timm towers are not supported)');
  r.only('attentional_pool', [false], 'false');
  r.only('ls_init_value', [], 'null (layer scale is not supported)');
  r.only('input_patchnorm', [false], 'false');
  r.only('pos_embed_type', ['learnable'], '"learnable"');
  r.only('block_type', ['default'], '"default"');
  for (const f of ['qk_norm', 'scaled_cosine_attns', 'scale_heads', 'scale_attn', 'scale_fc', 'scale_attn_inner']) r.only(f, [false], 'false');
  const imageSize = squareSize(visionRaw.image_size, 224, 'image_size');
  const patchSize = squareSize(visionRaw.patch_size, 16, 'patch_size');
  const width = r.int('width', 768);
  const headWidth = r.int('head_width', 64);
  if (width % headWidth !== 0) throw unsupportedConfigValue(r.what, 'head_width', headWidth, `a divisor of width ${width}`);
  if (imageSize % patchSize !== 0) throw unsupportedConfigValue(r.what, 'patch_size', patchSize, `a divisor of image_size ${imageSize}`);
  const norm = r.object('norm_kwargs') ?? {};
  const act = r.object('act_kwargs');
  if (act && Object.keys(act).length) throw unsupportedConfigValue(r.what, 'act_kwargs', act, '{} (the activation comes from quick_gelu)');
  let poolType = r.oneOf('pool_type', ['tok', 'avg', 'none'], 'tok');
  if (r.bool('global_average_pool', false)) poolType = 'avg';
  return {
    imageSize,
    patchSize,
    width,
    layers: r.int('layers', 12),
    heads: width / headWidth,
    mlpWidth: Math.trunc(width * r.number('mlp_ratio', 4)),
    quickGelu: quickGeluOverride ?? top.bool('quick_gelu', false),
    noLnPre: r.bool('no_ln_pre', false),
    finalLnAfterPool: r.bool('final_ln_after_pool', false),
    poolType,
    layerNormEps: typeof norm.eps === 'number' ? norm.eps : 1e-5,
    embedDim: top.has('embed_dim') ? top.int('embed_dim') : null,
  };

  function squareSize(v: unknown, fallback: number, field: string): number {
    if (v === undefined || v === null) return fallback;
    if (Array.isArray(v) && v.length === 2 && v[0] === v[1]) v = v[0];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw unsupportedConfigValue(r.what, field, v, 'a positive integer (square)');
    return v;
  }
}
