import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Module } from './module';

/** A shape as tfjs-layers passes it: `null` for sizes unknown until run time (batch). */
export type SymbolicShape = Array<number | null>;

/**
 * What a module needs to be wrapped in a {@link ModuleLayer}: a JSON configuration that
 * rebuilds it, a forward over positional tensors, and its output shape.
 */
export interface LayerModule extends Module {
  /** The constructor arguments (JSON-serialisable) that rebuild this module. */
  getConfig(): tf.serialization.ConfigDict;
  /** Forward pass over positional tensor inputs. */
  forward(...inputs: tf.Tensor[]): tf.Tensor;
  /** Output shape for the given input shape(s) (one shape, or one per input). */
  computeOutputShape(inputShape: SymbolicShape | SymbolicShape[]): SymbolicShape;
}

/** A {@link LayerModule} class: a static `className` and a constructor that takes its config. */
export interface LayerModuleClass {
  /** Unique name used in saved model topologies. */
  className: string;
  new (config: never): LayerModule;
}

const moduleClasses = new Map<string, LayerModuleClass>();

/**
 * Makes a module class loadable from a saved tfjs-layers model: {@link ModuleLayer} stores the
 * class name and config, and rebuilds the module through this registry. Idempotent.
 *
 * @example
 * ```ts
 * registerModuleClass(PerceiverResampler);
 * ```
 */
export function registerModuleClass(cls: LayerModuleClass): void {
  const known = moduleClasses.get(cls.className);
  if (known && known !== cls && known.toString() !== cls.toString()) {
    throw new Error(`registerModuleClass: another class is already registered as '${cls.className}'`);
  }
  moduleClasses.set(cls.className, cls);
}

/** tfjs-layers' own `LayerArgs` (name, trainable, inputShape, …), which it does not export by name. */
export type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Constructor arguments of {@link ModuleLayer}: tfjs-layers' {@link BaseLayerArgs} and the module. */
export type ModuleLayerArgs = BaseLayerArgs & {
  /** The module to wrap (its class must be registered with {@link registerModuleClass} to be saved and loaded). */
  module: LayerModule;
};

/**
 * A tfjs-layers `Layer` that runs an `@vlm` {@link Module}, so bridges can sit inside a
 * `tf.model`/`tf.sequential`, be trained with `fit` and saved with `model.save`.
 *
 * tfjs-layers does not see weights of layers nested inside a custom layer; this adapter
 * therefore hands every module weight to tfjs-layers itself: on `build` each one becomes a
 * layer weight named by its dotted PyTorch name (`myLayer/layers.0.cross_attn.in_proj_weight`),
 * and the module reads that same variable. Registered as `vlm>ModuleLayer`.
 *
 * @example
 * ```ts
 * const input = tf.input({ shape: [17, 32] });
 * const output = new ModuleLayer({ module: new PerceiverResampler({ dim: 32, numQueries: 8 }) }).apply(input) as tf.SymbolicTensor;
 * const model = tf.model({ inputs: input, outputs: output });
 * await model.save(handler);            // topology + weights
 * const again = await tf.loadLayersModel(handler); // identical outputs
 * ```
 */
export class ModuleLayer extends tfl.layers.Layer {
  /** The name tfjs-layers serialises this layer under (registered as `vlm>ModuleLayer`). */
  static className = 'ModuleLayer';
  /** The wrapped module. */
  readonly module: LayerModule;

  constructor(args: ModuleLayerArgs) {
    super(args);
    this.module = args.module;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    for (const [name, variable] of this.module.namedParameters()) {
      const weight = this.addWeight(name, variable.shape, 'float32', tfl.initializers.zeros(), undefined, variable.trainable);
      weight.write(variable);
      this.module.replaceParameterVariable(name, weight.read() as tf.Variable).dispose();
    }
    super.build(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => this.module.forward(...(Array.isArray(inputs) ? inputs : [inputs])));
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return this.module.computeOutputShape(inputShape as SymbolicShape | SymbolicShape[]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    const cls = this.module.constructor as unknown as LayerModuleClass;
    // tfjs-layers snake_cases every string value on save (and camelCases it on load), except
    // under the keys `name` and `className`; the module config is therefore stored as hex JSON.
    return { ...super.getConfig(), module: { className: cls.className, configHex: toHex(JSON.stringify(this.module.getConfig())) } };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const { module: saved, ...layerArgs } = config as { module?: { className?: string; configHex?: string } };
    if (typeof saved?.className !== 'string' || typeof saved.configHex !== 'string') {
      throw new Error(`ModuleLayer: expected config.module = { className, configHex }, got ${JSON.stringify(saved)}`);
    }
    const moduleClass = saved.className;
    const moduleConfig = JSON.parse(fromHex(saved.configHex)) as tf.serialization.ConfigDict;
    const moduleCls = moduleClasses.get(moduleClass);
    if (!moduleCls) {
      throw new Error(
        `ModuleLayer: unknown module class '${moduleClass}'. Import the package that defines it ` +
          `(it registers itself) or call registerModuleClass(). Known: ${[...moduleClasses.keys()].join(', ') || 'none'}`,
      );
    }
    const module = new moduleCls(moduleConfig as never);
    return new cls({ ...layerArgs, module });
  }
}

function toHex(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(hex: string): string {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return new TextDecoder().decode(bytes);
}

/**
 * Registers {@link ModuleLayer} with `tf.serialization.registerClass` under the `vlm` package
 * name. Called when `@vlm/core` is imported; calling it again is harmless.
 */
export function registerVlmLayers(): void {
  if (tf.serialization.getRegisteredName(ModuleLayer) !== 'vlm>ModuleLayer') {
    tf.serialization.registerClass(ModuleLayer, 'vlm');
  }
}

registerVlmLayers();
