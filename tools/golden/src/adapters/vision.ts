import * as tf from '@tensorflow/tfjs-core';
import { writeSafetensors } from '@vlm/core';
import { loadBlip2VisionModel, loadClipVisionModel } from '@vlm/frozen-loaders';
import { tensorOf, type GoldenAdapter, type GoldenCase } from '../golden-case';

/**
 * The case's weights (every tensor that is not `input.*` / `output.*`, under its HF key) as the
 * bytes of a `model.safetensors`, so that the case runs through the public loader exactly as a
 * real checkpoint would (config parsing, key prefix detection, strict load, freeze).
 */
function checkpointOf(c: GoldenCase): { config: Record<string, unknown>; weights: Uint8Array } {
  const weights = Object.fromEntries(Object.entries(c.tensors).filter(([k]) => !k.startsWith('input.') && !k.startsWith('output.')));
  return { config: c.sidecar.config, weights: writeSafetensors(weights) };
}

/** The HF-style outputs every vision backbone case may ask for. */
function visionOutputs(
  c: GoldenCase,
  out: { lastHiddenState: tf.Tensor; poolerOutput: tf.Tensor; hiddenStates: tf.Tensor[] },
): Record<string, tf.Tensor> {
  const result: Record<string, tf.Tensor> = { 'output.last_hidden_state': out.lastHiddenState, 'output.pooler_output': out.poolerOutput };
  out.hiddenStates.forEach((h, i) => {
    if (c.tensors[`output.hidden_states.${i}`]) result[`output.hidden_states.${i}`] = h;
    else h.dispose();
  });
  return result;
}

const wantsHidden = (c: GoldenCase) => Object.keys(c.tensors).some((k) => k.startsWith('output.hidden_states.'));

/** HF `CLIPVisionModel` backbone cases (`backbone_clip_*`): pixel_values NCHW → HF outputs. */
const clipVision: GoldenAdapter = (c) => {
  const model = loadClipVisionModel(checkpointOf(c));
  try {
    return visionOutputs(c, model.forward(tensorOf(c, 'input.pixel_values'), { outputHiddenStates: wantsHidden(c) }));
  } finally {
    model.dispose();
  }
};

/** HF `Blip2VisionModel` cases (`blip2/blip2_vision_*`): pixel_values NCHW → HF outputs. */
const blip2Vision: GoldenAdapter = (c) => {
  const model = loadBlip2VisionModel(checkpointOf(c));
  try {
    return visionOutputs(c, model.forward(tensorOf(c, 'input.pixel_values'), { outputHiddenStates: wantsHidden(c) }));
  } finally {
    model.dispose();
  }
};

/** Vision backbone adapters of @vlm/frozen-loaders, by `case.hf_class`. */
export const visionAdapters: Record<string, GoldenAdapter> = {
  CLIPVisionModel: clipVision,
  Blip2VisionModel: blip2Vision,
};
