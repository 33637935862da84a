import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';

/** A module with a one-tensor-in, one-tensor-out forward, as {@link Sequential} chains them. */
export interface UnaryModule extends Module {
  /** One tensor in, one tensor out. */
  forward(x: tf.Tensor): tf.Tensor;
}

/**
 * `torch.nn.Sequential`: children named `0`, `1`, … applied in order, so weights get the same
 * keys as in PyTorch (`ffn.0.weight`, `ffn.2.weight` when index 1 is a GELU).
 *
 * @example
 * ```ts
 * const ffn = new Sequential([new Linear({ inFeatures: 8, outFeatures: 32 }), new GELU(), new Linear({ inFeatures: 32, outFeatures: 8 })]);
 * Object.keys(ffn.stateDictShapes()); // ['0.weight', '0.bias', '2.weight', '2.bias']
 * ```
 */
export class Sequential extends Module {
  /** The children in call order (state-dict names `0`, `1`, …). */
  readonly modules: readonly UnaryModule[];

  constructor(modules: UnaryModule[]) {
    super();
    this.modules = modules.map((m, i) => this.registerModule(String(i), m));
  }

  /** Applies each child in turn. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.modules.reduce((h, m) => m.forward(h), x));
  }
}

/**
 * `torch.nn.ModuleList`: children named `0`, `1`, … that the owner calls itself.
 *
 * @example
 * ```ts
 * const layers = new ModuleList([new LayerNorm({ dim: 8 }), new LayerNorm({ dim: 8 })]);
 * layers.get(1); // the second LayerNorm, weights under '1.weight', '1.bias'
 * ```
 */
export class ModuleList<M extends Module = Module> extends Module {
  /** The children in order (state-dict names `0`, `1`, …). */
  readonly modules: readonly M[];

  constructor(modules: M[]) {
    super();
    this.modules = modules.map((m, i) => this.registerModule(String(i), m));
  }

  /** Number of children. */
  get length(): number {
    return this.modules.length;
  }

  /** The child at `index`. */
  get(index: number): M {
    const m = this.modules[index];
    if (!m) throw new Error(`ModuleList index ${index} out of range [0, ${this.modules.length})`);
    return m;
  }

  /** Iterates over the children in order, so `for (const layer of layers)` works. */
  [Symbol.iterator](): Iterator<M> {
    return this.modules[Symbol.iterator]();
  }
}
