import * as tf from '@tensorflow/tfjs-core';
import { Linear } from './linear';
import { Module } from './module';
import { assertShape } from './shape-checks';
import { gelu, type GeluApproximation } from './gelu';
import { registerModuleClass, type LayerModule, type SymbolicShape } from './module-layer';

/** Constructor arguments of {@link MlpProjector}. */
export interface MlpProjectorArgs {
  /** Width of the vision features (`vision_config.hidden_size`). */
  inFeatures: number;
  /** Width of the language model's embeddings (`text_config.hidden_size`). */
  outFeatures: number;
  /** Hidden width. Default: `outFeatures` (as LLaVA). */
  hiddenFeatures?: number;
  /** Biases on both Linear layers. Default: `true` (LLaVA's `multimodal_projector_bias`). */
  bias?: boolean;
  /** GELU form. Default: `'none'` (exact erf, LLaVA's `projector_hidden_act: "gelu"`). */
  approximate?: GeluApproximation;
}

/**
 * The LLaVA-1.5 bridge (`LlavaMultiModalProjector`): `linear_2(gelu(linear_1(x)))`, applied to
 * every vision token; the simplest baseline to swap in for the Q-Former. Unlike the Q-Former
 * it keeps the number of visual tokens.
 *
 * State-dict keys, as Hugging Face LLaVA without its `multi_modal_projector.` prefix:
 * `linear_1.weight` `[hidden, in]`, `linear_1.bias`, `linear_2.weight` `[out, hidden]`,
 * `linear_2.bias`. The original LLaVA repository's `model.mm_projector.0.*` / `.2.*` are
 * `linear_1.*` / `linear_2.*`.
 *
 * @example
 * ```ts
 * const projector = new MlpProjector({ inFeatures: 1024, outFeatures: 4096 });
 * projector.forward(tf.zeros([2, 576, 1024])).shape; // [2, 576, 4096]
 * ```
 */
export class MlpProjector extends Module implements LayerModule {
  /** Name under which core's `ModuleLayer` saves this class. */
  static className = 'MlpProjector';
  /** The constructor arguments with defaults filled in (`hiddenFeatures`, `bias`, `approximate`). */
  readonly args: Required<MlpProjectorArgs>;
  /** The first Linear, `inFeatures → hiddenFeatures` (HF `linear_1`, weight `[hidden, in]`). */
  readonly linear1: Linear;
  /** The second Linear, `hiddenFeatures → outFeatures` (HF `linear_2`, weight `[out, hidden]`). */
  readonly linear2: Linear;

  constructor(args: MlpProjectorArgs) {
    super();
    this.args = {
      inFeatures: args.inFeatures,
      outFeatures: args.outFeatures,
      hiddenFeatures: args.hiddenFeatures ?? args.outFeatures,
      bias: args.bias ?? true,
      approximate: args.approximate ?? 'none',
    };
    const { inFeatures, hiddenFeatures, outFeatures, bias } = this.args;
    this.linear1 = this.registerModule('linear_1', new Linear({ inFeatures, outFeatures: hiddenFeatures, bias }));
    this.linear2 = this.registerModule('linear_2', new Linear({ inFeatures: hiddenFeatures, outFeatures, bias }));
  }

  /** `[..., inFeatures] → [..., outFeatures]`. */
  forward(x: tf.Tensor): tf.Tensor {
    assertShape(x, [...x.shape.slice(0, -1), this.args.inFeatures], 'MlpProjector input');
    return tf.tidy(() => this.linear2.forward(gelu(this.linear1.forward(x), this.args.approximate)));
  }

  /** `[..., in] → [..., out]`. */
  computeOutputShape(inputShape: SymbolicShape | SymbolicShape[]): SymbolicShape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as SymbolicShape;
    return [...shape.slice(0, -1), this.args.outFeatures];
  }

  /** The resolved {@link MlpProjectorArgs} (JSON). */
  getConfig(): tf.serialization.ConfigDict {
    return { ...this.args };
  }
}

registerModuleClass(MlpProjector);
