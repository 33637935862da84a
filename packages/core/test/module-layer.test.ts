import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, test } from 'vitest';
import {
  FeedForward,
  LayerNorm,
  Module,
  ModuleLayer,
  MultiHeadAttention,
  registerModuleClass,
  registerVlmLayers,
  type LayerModule,
  type SymbolicShape,
} from '@vlm/core';

interface TinyResamplerArgs {
  dim: number;
  numQueries: number;
}

// A small composite with nested children: learned queries, torch-style MHA, norm, MLP.
class TinyResampler extends Module implements LayerModule {
  static className = 'TinyResampler';
  readonly attn: MultiHeadAttention;
  readonly norm: LayerNorm;
  readonly ffn: FeedForward;
  constructor(readonly args: TinyResamplerArgs) {
    super();
    this.registerParameter('queries', tf.randomNormal([1, args.numQueries, args.dim]));
    this.attn = this.registerModule('attn', new MultiHeadAttention({ embedDim: args.dim, numHeads: 2 }));
    this.norm = this.registerModule('norm', new LayerNorm({ dim: args.dim }));
    this.ffn = this.registerModule('ffn', new FeedForward({ dim: args.dim, mult: 2 }));
  }
  getConfig() {
    return { ...this.args };
  }
  computeOutputShape(shape: SymbolicShape | SymbolicShape[]): SymbolicShape {
    return [(shape as SymbolicShape)[0]!, this.args.numQueries, this.args.dim];
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const q = tf.tile(this.parameter('queries'), [x.shape[0]!, 1, 1]);
      const h = tf.add(q, this.attn.forward(this.norm.forward(q), x, x));
      return tf.add(h, this.ffn.forward(h));
    });
  }
}
registerModuleClass(TinyResampler);

function buildModel() {
  const input = tfl.input({ shape: [5, 8] });
  const layer = new ModuleLayer({ module: new TinyResampler({ dim: 8, numQueries: 3 }), name: 'resampler' });
  const output = tfl.layers.dense({ units: 2 }).apply(layer.apply(input)) as tfl.SymbolicTensor;
  return { model: tfl.model({ inputs: input, outputs: output }), layer };
}

test('ModuleLayer exposes every nested weight to tfjs-layers, trains with fit, and survives save → load', async () => {
  const { model, layer } = buildModel();
  const names = layer.weights.map((w) => w.originalName);
  expect(names).toContain('resampler/attn.in_proj_weight');
  expect(names).toContain('resampler/ffn.2.bias');
  expect(layer.countParams()).toBe(3 * 8 + (24 * 8 + 24 + 8 * 8 + 8) + 16 + (16 * 8 + 16 + 8 * 16 + 8));

  const x = tf.randomNormal([4, 5, 8], 0, 1, 'float32', 1);
  const y = tf.randomNormal([4, 3, 2], 0, 1, 'float32', 2);
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
  const queriesBefore = (layer.module as TinyResampler).stateDict().queries!;
  const h = await model.fit(x, y, { epochs: 3, verbose: 0 });
  expect(h.history.loss!.length).toBe(3);
  const queriesAfter = (layer.module as TinyResampler).stateDict().queries!;
  // fit updated the module's own weights (they are the layer's variables)
  expect(tf.max(tf.abs(tf.sub(queriesAfter, queriesBefore))).dataSync()[0]).toBeGreaterThan(0);

  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    saved = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  expect(JSON.stringify(saved!.modelTopology)).toContain('"class_name":"ModuleLayer"');
  expect(tf.serialization.getRegisteredName(ModuleLayer)).toBe('vlm>ModuleLayer');
  registerVlmLayers(); // idempotent
  registerModuleClass(TinyResampler);
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
  const a = model.predict(x) as tf.Tensor;
  const b = loaded.predict(x) as tf.Tensor;
  expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));

  // no leak per predict
  const before = tf.memory().numTensors;
  tf.dispose(loaded.predict(x) as tf.Tensor);
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([x, y, a, b, queriesBefore, queriesAfter]);
  model.dispose();
  loaded.dispose();
});

test('loading a model whose module class is unknown says which class and how to fix it', () => {
  expect(() => ModuleLayer.fromConfig(ModuleLayer as never, { module: { className: 'NoSuchModule', configHex: '7b7d' } })).toThrow(
    /unknown module class 'NoSuchModule'.*registerModuleClass/s,
  );
});
