/** Which whole model a saved bridge belongs to. */
export type BridgeKind = 'flamingo' | 'blip2' | 'llava';

/**
 * A trained bridge, as the models' `saveBridge()` return it and `loadBridge()` read it: the
 * bridge's weights as a safetensors file under PyTorch names (OpenFlamingo's for Flamingo,
 * Hugging Face's `Blip2ForConditionalGeneration` for BLIP-2, Hugging Face LLaVA's
 * `multi_modal_projector.*` for the MLP projector) and the JSON config that rebuilds it.
 * `@vlm/pipelines/node` writes it as `<name>.safetensors` + `<name>.json`.
 */
export interface SavedBridge<C = unknown> {
  /** The model class the bridge belongs to. */
  kind: BridgeKind;
  /** The bridge's constructor settings (JSON). */
  config: C;
  /** The safetensors bytes (`__metadata__: { format: 'pt' }`). */
  weights: Uint8Array;
}
