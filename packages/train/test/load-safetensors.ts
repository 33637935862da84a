import type * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { readSafetensors } from '@vlm/core';

/** The tensors of a safetensors file (the caller disposes them). */
export const loadSafetensors = (path: string): Record<string, tf.Tensor> => readSafetensors(readFileSync(path)).tensors;
