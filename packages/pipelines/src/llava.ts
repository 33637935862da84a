import * as tf from '@tensorflow/tfjs-core';
import { MlpProjector, type MlpProjectorArgs } from '@vlm/core';
import type { SavedBridge } from './bridge-checkpoint';
import { packBridge, withBridgeTensors } from './bridge-weights';
import { SoftPromptModel, type SoftPromptModelArgs } from './soft-prompt-model';

/** An MLP-projector bridge's config, as {@link Llava.saveBridge} writes it. */
export interface LlavaBridgeConfig {
  /** The projector's constructor arguments. */
  projector: MlpProjectorArgs;
  /** The LM's image placeholder id, if the model places soft prompts at placeholders. */
  imageTokenId?: number;
}

/** Constructor arguments of {@link Llava}. */
export interface LlavaArgs extends SoftPromptModelArgs {
  /** The projector or its arguments (`inFeatures` = vision token width, `outFeatures` = LM embedding width). Owned by the model. */
  projector: MlpProjector | MlpProjectorArgs;
}

/**
 * The LLaVA-style baseline (Liu et al. 2023, LLaVA-1.5's projector): every vision token goes
 * through core's `MlpProjector` (`linear_2(gelu(linear_1(x)))`) into the frozen LM's embedding
 * space, so an image becomes as many soft-prompt vectors as the encoder has tokens. The
 * simplest bridge to compare the Perceiver Resampler and the Q-Former against.
 *
 * Saved bridges use Hugging Face LLaVA's names (`multi_modal_projector.linear_1.*`, `…linear_2.*`).
 *
 * @example
 * ```ts
 * const llava = new Llava({ vision, lm, projector: { inFeatures: vision.tokenWidth, outFeatures: lm.info.embedDim }, imageTokenId, tokenizer });
 * const loss = llava.loss({ visionTokens, inputIds, promptLength: 1 });
 * ```
 */
export class Llava extends SoftPromptModel {
  /** The MLP projector (trained). */
  readonly projector: MlpProjector;

  constructor(args: LlavaArgs) {
    super(args);
    this.projector = this.registerModule('multi_modal_projector', args.projector instanceof MlpProjector ? args.projector : new MlpProjector(args.projector));
    const { inFeatures, outFeatures } = this.projector.args;
    if (inFeatures !== this.vision.tokenWidth) throw new Error(`Llava: the projector's inFeatures (${inFeatures}) must equal the vision token width (${this.vision.tokenWidth})`);
    if (outFeatures !== this.lm.info.embedDim) throw new Error(`Llava: the projector's outFeatures (${outFeatures}) must equal the LM's embedding width (${this.lm.info.embedDim})`);
  }

  /** One soft-prompt vector per vision token. */
  get numVisualTokens(): number {
    return this.vision.numTokens;
  }

  /** Vision tokens `[N, tokens, width]` → `[N, tokens, lmEmbedDim]`. */
  softPrompt(visionTokens: tf.Tensor): tf.Tensor {
    return this.projector.forward(visionTokens);
  }

  /** The projector under Hugging Face LLaVA names, with its config. */
  saveBridge(): SavedBridge<LlavaBridgeConfig> {
    const config: LlavaBridgeConfig = { projector: { ...this.projector.args }, ...(this.imageTokenId !== undefined ? { imageTokenId: this.imageTokenId } : {}) };
    return packBridge('llava', config, this.stateDict());
  }

  /** Loads a bridge saved by {@link Llava.saveBridge}, strictly. */
  loadBridge(saved: SavedBridge | Uint8Array): void {
    withBridgeTensors(saved, 'llava', 'Llava.loadBridge', 'LLaVA projector', (tensors) => this.loadStateDict(tensors));
  }
}
