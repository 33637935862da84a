import { VisionConfigReader, parseConfigJson, unsupportedConfigValue } from './hf-config';
import { SUPPORTED_VISION_ACTIVATIONS, type VisionActivation } from './activations';

/** The fields of Hugging Face's `CLIPVisionConfig` that the CLIP vision tower uses (camelCased). */
export interface ClipVisionConfig {
  /** Token width `D` (`hidden_size`). Default when absent: `768`. */
  hiddenSize: number;
  /** Hidden width of each layer's MLP (`intermediate_size`). Default when absent: `3072`. */
  intermediateSize: number;
  /** Number of encoder layers `L` (`num_hidden_layers`). Default when absent: `12`. */
  numHiddenLayers: number;
  /** Attention heads per layer (`num_attention_heads`); divides `hiddenSize`. Default when absent: `12`. */
  numAttentionHeads: number;
  /** Input image channels `C` (`num_channels`). Default when absent: `3`. */
  numChannels: number;
  /** Side of the square input image in pixels (`image_size`); a multiple of `patchSize`. Default when absent: `224`. */
  imageSize: number;
  /** Side of each square patch in pixels (`patch_size`). Default when absent: `32`. */
  patchSize: number;
  /** MLP activation (`hidden_act`). Default when absent: `'quick_gelu'`. */
  hiddenAct: VisionActivation;
  /** Epsilon of every LayerNorm (`layer_norm_eps`). Default when absent: `1e-5`. */
  layerNormEps: number;
}

/**
 * Parses a Hugging Face `config.json` of a CLIP vision tower: a `CLIPVisionModel`
 * (`model_type: "clip_vision_model"`), or a whole `CLIPModel` (`"clip"`) or another model that
 * nests a CLIP tower under `vision_config` (LLaVA). Absent fields take HF's defaults (ViT-B/32).
 * A value this port does not support throws, naming the field.
 *
 * @example
 * ```ts
 * const cfg = parseClipVisionConfig(readFileSync('config.json', 'utf8'));
 * cfg.hiddenSize; // 1024 for openai/clip-vit-large-patch14
 * ```
 */
export function parseClipVisionConfig(config: string | Record<string, unknown>): ClipVisionConfig {
  let raw = parseConfigJson(config);
  const top = new VisionConfigReader(raw, 'CLIP config.json');
  const modelType = raw.model_type;
  if (modelType !== undefined && modelType !== 'clip_vision_model') {
    const nested = top.object('vision_config');
    if (!nested) {
      throw unsupportedConfigValue('CLIP config.json', 'model_type', modelType, '"clip_vision_model", or a config with a CLIP "vision_config" such as "clip"');
    }
    raw = nested;
  }
  const r = new VisionConfigReader(raw, 'CLIPVisionConfig');
  r.only('model_type', ['clip_vision_model'], '"clip_vision_model"');
  const cfg: ClipVisionConfig = {
    hiddenSize: r.int('hidden_size', 768),
    intermediateSize: r.int('intermediate_size', 3072),
    numHiddenLayers: r.int('num_hidden_layers', 12),
    numAttentionHeads: r.int('num_attention_heads', 12),
    numChannels: r.int('num_channels', 3),
    imageSize: r.int('image_size', 224),
    patchSize: r.int('patch_size', 32),
    hiddenAct: r.oneOf('hidden_act', SUPPORTED_VISION_ACTIVATIONS, 'quick_gelu'),
    layerNormEps: r.number('layer_norm_eps', 1e-5),
  };
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw unsupportedConfigValue('CLIPVisionConfig', 'num_attention_heads', cfg.numAttentionHeads, `a divisor of hidden_size ${cfg.hiddenSize}`);
  }
  if (cfg.imageSize % cfg.patchSize !== 0) {
    throw unsupportedConfigValue('CLIPVisionConfig', 'patch_size', cfg.patchSize, `a divisor of image_size ${cfg.imageSize}`);
  }
  return cfg;
}
