/**
 * Frozen pretrained backbones for `@vlm` bridges, loaded from Hugging Face checkpoints
 * (config.json + safetensors, sharded, F16/BF16) or TF.js models, and frozen on load.
 *
 * Vision: CLIP (HF `CLIPVisionModel`), open_clip ViT (OpenFlamingo's `vision_encoder.*`), BLIP-2's
 * EVA ViT (`Blip2VisionModel`), any TF.js LayersModel / GraphModel cut at a layer or node, and
 * nsfwjs' bundled MobileNetV2 as an offline default; image decoding and preprocessing.
 *
 * @packageDocumentation
 */
export * from './vision/index';
export * from './lm/index';
