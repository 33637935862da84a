// Internal (not exported by index.ts): the safetensors side of saveBridge/loadBridge, shared by
// Flamingo, Blip2 and Llava.
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, writeSafetensors, type StateDict } from '@vlm/core';
import type { BridgeKind, SavedBridge } from './bridge-checkpoint';

/** `dict` (a fresh state dict, disposed here) as a {@link SavedBridge} of `kind`. */
export function packBridge<C>(kind: BridgeKind, config: C, dict: StateDict): SavedBridge<C> {
  try {
    return { kind, config, weights: writeSafetensors(dict, { format: 'pt' }) };
  } finally {
    tf.dispose(Object.values(dict));
  }
}

/**
 * Checks that `saved` is a bridge of `kind` (bare bytes are taken as they are), reads its tensors,
 * hands them to `load` and disposes them afterwards. `who` names the caller in the error,
 * `source` the file in read errors.
 */
export function withBridgeTensors(saved: SavedBridge | Uint8Array, kind: BridgeKind, who: string, source: string, load: (tensors: StateDict) => void): void {
  if (!(saved instanceof Uint8Array) && saved.kind !== kind) throw new Error(`${who}: expected a '${kind}' bridge, got '${saved.kind}'`);
  const { tensors } = readSafetensors(saved instanceof Uint8Array ? saved : saved.weights, { source });
  try {
    load(tensors);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
