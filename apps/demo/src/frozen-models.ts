import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freeze, manualSeed } from '@vlm/core';
import { createDecoderLM, loadDecoderLM, loadNsfwjsMobileNetV2Encoder, loadTokenizer, preprocessImages, type CausalLM, type LMTokenizer, type VisionEncoder } from '@vlm/frozen-loaders';
import { shapeWorldTokenizerConfig, shapeWorldTokenizerJson, type SceneImage } from '@vlm/shapeworld';
import { readShapeWorldLM, shapeWorldLMDir } from '@vlm/shapeworld/node';

/** The frozen parts every pipeline of the demo shares. */
export interface FrozenModels {
  encoder: VisionEncoder;
  lm: CausalLM;
  tokenizer: LMTokenizer;
  /** Where the LM came from, for the report. */
  lmSource: string;
  /** True when the world's pretrained LM was found (else a seeded untrained stand-in). */
  pretrained: boolean;
  imageId: number;
  eocId: number;
  bosId: number;
  padId: number;
}

/**
 * The embedded encoder (nsfwjs' pretrained MobileNetV2, offline) and the world's frozen LM
 * (`@vlm/shapeworld`'s pretrained GPT-2 folder, loaded like any Hugging Face GPT-2). When the
 * LM folder is not there yet, a seeded, untrained GPT-2 with the world's tokenizer stands in,
 * and the demo says so: its few-shot and caption numbers then mean nothing.
 */
export async function loadFrozenModels(log: (s: string) => void): Promise<FrozenModels> {
  const encoder = await loadNsfwjsMobileNetV2Encoder();
  let lm: CausalLM;
  let tokenizer: LMTokenizer;
  let lmSource: string;
  let pretrained = false;
  const dir = shapeWorldLMDir();
  if (existsSync(join(dir, 'model.safetensors'))) {
    const files = readShapeWorldLM(dir);
    lm = await loadDecoderLM({ config: files.config, weights: files.weights });
    tokenizer = loadTokenizer(files.tokenizer, { tokenizerConfig: files.tokenizerConfig });
    lmSource = `the world's pretrained GPT-2 (${dir})`;
    pretrained = true;
  } else {
    tokenizer = loadTokenizer(shapeWorldTokenizerJson(), { tokenizerConfig: shapeWorldTokenizerConfig() });
    manualSeed(1234);
    lm = freeze(createDecoderLM({ model_type: 'gpt2', vocab_size: tokenizer.vocabSize, n_positions: 256, n_embd: 128, n_layer: 2, n_head: 4 }));
    manualSeed(null);
    lmSource = `UNTRAINED stand-in GPT-2 (the world's pretrained LM is not in ${dir} yet)`;
    log(`  WARNING: ${lmSource}; results are not meaningful until it is committed`);
  }
  const id = (t: string) => {
    const v = tokenizer.tokenToId(t);
    if (v === undefined) throw new Error(`the LM's tokenizer has no '${t}' token`);
    return v;
  };
  return { encoder, lm, tokenizer, lmSource, pretrained, imageId: id('<image>'), eocId: id('<|endofchunk|>'), bosId: id('<s>'), padId: id('<pad>') };
}

/** The frozen encoder over images, in chunks (vision tokens `[N, tokens, width]`). */
export function encodeImages(encoder: VisionEncoder, images: readonly SceneImage[], chunk = 32): tf.Tensor3D {
  const parts: tf.Tensor[] = [];
  for (let i = 0; i < images.length; i += chunk) {
    parts.push(tf.tidy(() => encoder.encode(preprocessImages(images.slice(i, i + chunk), encoder.preprocessing))));
  }
  const out = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  if (parts.length > 1) tf.dispose(parts);
  return out as tf.Tensor3D;
}
