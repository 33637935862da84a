import { SUPPORTED_VISION_ACTIVATIONS, type VisionActivation } from './activations';
import { VisionConfigReader, parseConfigJson, unsupportedConfigValue } from './hf-config';

/** The fields of Hugging Face's `Blip2VisionConfig` that the BLIP-2 vision tower uses (camelCased). */
export interface Blip2VisionConfig {
  /** Token width `D` (`hidden_size`). Default when absent: `1408`. */
  hiddenSize: number;
  /** Hidden width of each layer's MLP (`intermediate_size`). Default when absent: `6144`. */
  intermediateSize: number;
  /** Number of encoder layers `L` (`num_hidden_layers`). Default when absent: `39`. */
  numHiddenLayers: number;
  /** Attention heads per layer (`num_attention_heads`); divides `hiddenSize`. Default when absent: `16`. */
  numAttentionHeads: number;
  /** Side of the square input image in pixels (`image_size`); a multiple of `patchSize`. Default when absent: `224`. */
  imageSize: number;
  /** Side of each square patch in pixels (`patch_size`). Default when absent: `14`. */
  patchSize: number;
  /** MLP activation (`hidden_act`). Default when absent: `'gelu'` (exact erf GELU). */
  hiddenAct: VisionActivation;
  /** HF's default for this class is `1e-6`. */
  layerNormEps: number;
  /** Whether attention has q and v biases (stored fused as `qkv.bias`). */
  qkvBias: boolean;
}

/**
 * Parses the `config.json` of a `Blip2VisionModel` (`model_type: "blip_2_vision_model"`) or of a
 * whole BLIP-2 model (`"blip-2"`, e.g. `Blip2ForConditionalGeneration`; its `vision_config` is
 * used). Absent fields take HF's defaults (EVA ViT-g/14: 1408 wide, 39 layers, eps 1e-6). A value
 * this port does not support throws, naming the field.
 *
 * @example
 * ```ts
 * const cfg = parseBlip2VisionConfig(readFileSync('config.json', 'utf8'));
 * cfg.layerNormEps; // 1e-6
 * ```
 */
export function parseBlip2VisionConfig(config: string | Record<string, unknown>): Blip2VisionConfig {
  let raw = parseConfigJson(config);
  const modelType = raw.model_type;
  if (modelType !== undefined && modelType !== 'blip_2_vision_model') {
    const nested = new VisionConfigReader(raw, 'BLIP-2 config.json').object('vision_config');
    if (modelType !== 'blip-2' || !nested) {
      throw unsupportedConfigValue('BLIP-2 config.json', 'model_type', modelType, '"blip_2_vision_model", or "blip-2" with a "vision_config"');
    }
    raw = nested;
  }
  const r = new VisionConfigReader(raw, 'Blip2VisionConfig');
  r.only('model_type', ['blip_2_vision_model'], '"blip_2_vision_model"');
  r.only('num_channels', [3], '3');
  const cfg: Blip2VisionConfig = {
    hiddenSize: r.int('hidden_size', 1408),
    intermediateSize: r.int('intermediate_size', 6144),
    numHiddenLayers: r.int('num_hidden_layers', 39),
    numAttentionHeads: r.int('num_attention_heads', 16),
    imageSize: r.int('image_size', 224),
    patchSize: r.int('patch_size', 14),
    hiddenAct: r.oneOf('hidden_act', SUPPORTED_VISION_ACTIVATIONS, 'gelu'),
    layerNormEps: r.number('layer_norm_eps', 1e-6),
    qkvBias: r.bool('qkv_bias', true),
  };
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw unsupportedConfigValue('Blip2VisionConfig', 'num_attention_heads', cfg.numAttentionHeads, `a divisor of hidden_size ${cfg.hiddenSize}`);
  }
  if (cfg.imageSize % cfg.patchSize !== 0) {
    throw unsupportedConfigValue('Blip2VisionConfig', 'patch_size', cfg.patchSize, `a divisor of image_size ${cfg.imageSize}`);
  }
  return cfg;
}
