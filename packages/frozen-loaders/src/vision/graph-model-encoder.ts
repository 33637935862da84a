import * as tf from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import { featureMapToTokens } from './feature-map-tokens';
import { preprocessingForInput } from './layers-model-encoder';
import type { ImagePreprocessing } from './preprocess';
import type { VisionEncoder } from './vision-encoder';

/** Options of {@link GraphModelEncoder}. */
export interface GraphModelEncoderOptions {
  /** The node whose output becomes the tokens, as `GraphModel.execute` names it (`'MobilenetV2/Conv_1/Relu6'`, `'conv:0'`). */
  node: string;
  /** Average-pool a feature map `pool×pool` before flattening it to tokens. Default: `1`. */
  pool?: number;
  /** The input node, when the graph has several. Default: the model's only input. */
  inputName?: string;
  /** How images become the model's input. Default: resize to the input size, [0, 1], NHWC. */
  preprocessing?: ImagePreprocessing;
  /** Dispose the source model with the encoder. Default: `true`. */
  ownsModel?: boolean;
}

/**
 * Any TF.js `GraphModel` (converted TF SavedModel / TF Hub) cut at a named node, as a
 * {@link VisionEncoder}: the node's feature map `[b, h, w, c]` becomes `h·w` tokens (optionally
 * average-pooled). A GraphModel's weights are constants, never trainable, so it is frozen as
 * loaded. The constructor runs one zero image through the graph to learn the token shape.
 * Graphs with control flow need `executeAsync` and are not supported.
 *
 * @example
 * ```ts
 * const model = await tf.loadGraphModel('https://host/mobilenet_v2_mid/model.json');
 * const enc = new GraphModelEncoder(model, { node: 'StatefulPartitionedCall/.../MobilenetV2/Conv_1/Relu6' });
 * enc.encode(tf.zeros([1, 224, 224, 3])).shape; // [1, 49, 1792]
 * ```
 */
export class GraphModelEncoder implements VisionEncoder {
  readonly inputLayout = 'NHWC' as const;
  readonly preprocessing: ImagePreprocessing;
  readonly tokenWidth: number;
  readonly numTokens: number;
  /** Side of the average-pooling window applied to the feature map before flattening (`options.pool`; `1`, the default, is no pooling). */
  readonly pool: number;
  readonly name: string;

  constructor(
    /** The source model. */
    readonly model: GraphModel,
    /** The options the encoder was built with. */
    readonly options: GraphModelEncoderOptions,
  ) {
    this.pool = options.pool ?? 1;
    const inputs = model.inputs;
    const input = options.inputName ? inputs.find((i) => i.name === options.inputName) : inputs[0];
    if (!input || (!options.inputName && inputs.length !== 1)) {
      throw new Error(`GraphModelEncoder: pick the image input with options.inputName (inputs: ${inputs.map((i) => i.name).join(', ')})`);
    }
    this.preprocessing = options.preprocessing ?? preprocessingForInput(input.shape ?? [], 'GraphModelEncoder');
    const p = this.preprocessing;
    const size = p.crop ?? (p.resize && 'height' in p.resize ? p.resize : null);
    if (!size) throw new Error('GraphModelEncoder: options.preprocessing must give a fixed output size (a crop or a {height, width} resize)');
    const probe = tf.tidy(() => this.run(tf.zeros([1, size.height, size.width, 3])));
    [, this.numTokens, this.tokenWidth] = probe.shape;
    probe.dispose();
    this.name = `GraphModel @ ${options.node}${this.pool > 1 ? ` (avg-pool ${this.pool})` : ''}`;
  }

  /** NHWC pixels `[b, H, W, C]` (already preprocessed) → tokens `[b, tokens, c]`. */
  encode(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.run(pixels));
  }

  /** Releases the model's weights when the encoder owns it (default). */
  dispose(): void {
    if (this.options.ownsModel ?? true) this.model.dispose();
  }

  private run(pixels: tf.Tensor): tf.Tensor3D {
    const feed = this.options.inputName ? { [this.options.inputName]: pixels } : pixels;
    let out: tf.Tensor | tf.Tensor[];
    try {
      out = this.model.execute(feed, this.options.node);
    } catch (e) {
      throw new Error(`GraphModelEncoder: could not run the graph to node '${this.options.node}': ${(e as Error).message}`);
    }
    if (Array.isArray(out)) throw new Error(`GraphModelEncoder: node '${this.options.node}' gave ${out.length} tensors; name one output`);
    return featureMapToTokens(out, this.pool);
  }
}
