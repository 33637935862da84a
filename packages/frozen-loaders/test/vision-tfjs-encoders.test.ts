import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  GraphModelEncoder,
  LayersModelEncoder,
  featureMapToTokens,
  NSFWJS_MOBILENET_V2_COLOUR_CUT,
  loadNsfwjsMobileNetV2Encoder,
  mobileNetPreprocessing,
  preprocessImages,
  type VisionEncoder,
} from '../src/vision/index';

describe('featureMapToTokens', () => {
  test('[b, h, w, c] → h·w tokens row-major, optional average pooling', () => {
    const x = tf.reshape(tf.range(0, 2 * 4 * 4 * 3), [2, 4, 4, 3]);
    const t = featureMapToTokens(x);
    expect(t.shape).toEqual([2, 16, 3]);
    // token (row 1, col 2) of image 0 = x[0, 1, 2, :]
    expect(Array.from(tf.tidy(() => tf.slice(t, [0, 6, 0], [1, 1, 3]).dataSync()))).toEqual(Array.from(tf.tidy(() => tf.slice(x, [0, 1, 2, 0], [1, 1, 1, 3]).dataSync())));
    const p = featureMapToTokens(x, 2);
    expect(p.shape).toEqual([2, 4, 3]);
    // pooled token 0 = mean of x[0, 0:2, 0:2, 0]
    const want = (0 + 3 + 12 + 15) / 4;
    expect(p.dataSync()[0]).toBeCloseTo(want, 5);
    expect(featureMapToTokens(tf.zeros([2, 7, 5])).shape).toEqual([2, 7, 5]);
    expect(featureMapToTokens(tf.zeros([2, 5])).shape).toEqual([2, 1, 5]);
  });
});

describe('LayersModelEncoder: any LayersModel cut at a named layer', () => {
  function smallCnn(): tfl.LayersModel {
    const input = tfl.input({ shape: [8, 8, 3], name: 'image' });
    const c1 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(input) as tfl.SymbolicTensor;
    const c2 = tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c2' }).apply(c1) as tfl.SymbolicTensor;
    const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(c2) as tfl.SymbolicTensor;
    const head = tfl.layers.dense({ units: 3, name: 'head' }).apply(gap) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: head, name: 'small_cnn' });
  }

  test('tokens from the cut layer equal the layer activations; frozen; no leaks', () => {
    const model = smallCnn();
    const enc = new LayersModelEncoder(model, { layer: 'c2' });
    expect(enc.tokenWidth).toBe(6);
    expect(enc.numTokens).toBe(16);
    expect(enc.inputLayout).toBe('NHWC');
    expect(enc.preprocessing.resize).toEqual({ height: 8, width: 8 });
    expect(model.trainableWeights).toHaveLength(0);
    expect(model.weights.every((w) => !w.trainable && !w.read().trainable)).toBe(true);

    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 3);
    const before = tf.memory().numTensors;
    const tokens = enc.encode(x);
    expect(tokens.shape).toEqual([2, 16, 6]);
    tokens.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const direct = tf.tidy(() => {
      const cut = tfl.model({ inputs: model.inputs, outputs: model.getLayer('c2').output as tfl.SymbolicTensor });
      return tf.reshape(cut.predict(x) as tf.Tensor, [2, 16, 6]);
    });
    const again = enc.encode(x);
    expect(Array.from(again.dataSync())).toEqual(Array.from(direct.dataSync()));
    tf.dispose([again, direct]);

    const pooled = new LayersModelEncoder(model, { layer: 'c2', pool: 2, ownsModel: false });
    expect(pooled.numTokens).toBe(4);
    const p = pooled.encode(x);
    expect(p.shape).toEqual([2, 4, 6]);
    p.dispose();
    const vector = new LayersModelEncoder(model, { layer: 'gap', ownsModel: false });
    expect(vector.numTokens).toBe(1);
    x.dispose();
    enc.dispose();
  });

  test('an unknown layer name is a clear error that lists similar names', () => {
    const model = smallCnn();
    expect(() => new LayersModelEncoder(model, { layer: 'c' })).toThrow(/has no layer 'c' .*similar: c1, c2/);
    model.dispose();
  });
});

/** A real GraphModel built from a hand-written GraphDef: conv1x1 → Relu → AvgPool → Identity. */
async function tinyGraphModel(kernel: number[]): Promise<GraphModel> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const ints = (...v: number[]) => ({ list: { i: v.map(String) } });
  const modelTopology = {
    node: [
      { name: 'image', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '4' }, { size: '4' }, { size: '3' }] } } } },
      { name: 'w', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '1' }, { size: '1' }, { size: '3' }, { size: '2' }] } } } } },
      {
        name: 'features/conv',
        op: 'Conv2D',
        input: ['image', 'w'],
        attr: { T: { type: 'DT_FLOAT' }, strides: ints(1, 1, 1, 1), dilations: ints(1, 1, 1, 1), padding: { s: b64('VALID') }, data_format: { s: b64('NHWC') } },
      },
      { name: 'features/relu', op: 'Relu', input: ['features/conv'], attr: { T: { type: 'DT_FLOAT' } } },
      {
        name: 'head/pool',
        op: 'AvgPool',
        input: ['features/relu'],
        attr: { T: { type: 'DT_FLOAT' }, ksize: ints(1, 4, 4, 1), strides: ints(1, 4, 4, 1), padding: { s: b64('VALID') }, data_format: { s: b64('NHWC') } },
      },
      { name: 'Identity', op: 'Identity', input: ['head/pool'], attr: { T: { type: 'DT_FLOAT' } } },
    ],
    versions: { producer: 1 },
  };
  const handler = tf.io.fromMemory({
    modelTopology,
    format: 'graph-model',
    weightSpecs: [{ name: 'w', shape: [1, 1, 3, 2], dtype: 'float32' }],
    weightData: new Float32Array(kernel).buffer,
  });
  return loadGraphModel(handler);
}

describe('GraphModelEncoder: a real GraphModel cut at a node', () => {
  const kernel = [1, -1, 0.5, 2, -0.25, 0.5]; // [1, 1, 3, 2]: in-channel major
  let model: GraphModel;
  beforeAll(async () => {
    model = await tinyGraphModel(kernel);
  });
  afterAll(() => model.dispose());

  test('it is a GraphModel whose full output is the pooled head', () => {
    expect(model.constructor.name).toBe('GraphModel');
    const y = model.predict(tf.ones([1, 4, 4, 3])) as tf.Tensor;
    expect(y.shape).toEqual([1, 1, 1, 2]);
    y.dispose();
  });

  test('cut at features/relu: 16 tokens of 2 = relu(x · W), per pixel; pooled 2×2 → 4 tokens', () => {
    const enc = new GraphModelEncoder(model, { node: 'features/relu', ownsModel: false });
    expect(enc.numTokens).toBe(16);
    expect(enc.tokenWidth).toBe(2);
    expect(enc.preprocessing.resize).toEqual({ height: 4, width: 4 });
    const x = tf.randomUniform([2, 4, 4, 3], -1, 1, 'float32', 5);
    const before = tf.memory().numTensors;
    const tokens = enc.encode(x);
    expect(tokens.shape).toEqual([2, 16, 2]);
    const px = x.arraySync() as number[][][][];
    const got = tokens.arraySync() as number[][][];
    for (const [b, r, c] of [[0, 0, 0], [1, 2, 3], [0, 3, 1]] as const) {
      const v = px[b]![r]![c]!;
      for (let o = 0; o < 2; o++) {
        const dot = v[0]! * kernel[o]! + v[1]! * kernel[2 + o]! + v[2]! * kernel[4 + o]!;
        expect(got[b]![r * 4 + c]![o]).toBeCloseTo(Math.max(0, dot), 5);
      }
    }
    tokens.dispose();
    expect(tf.memory().numTensors).toBe(before);

    const pooled = new GraphModelEncoder(model, { node: 'features/relu', pool: 2, ownsModel: false });
    expect(pooled.numTokens).toBe(4);
    const p = pooled.encode(x);
    expect(p.shape).toEqual([2, 4, 2]);
    tf.dispose([p, x]);
    // Graph weights are constants: nothing to train.
    expect(Object.values(model.weights).flat().some((t) => t instanceof tf.Variable)).toBe(false);
  });

  test('an unknown node is a clear error', () => {
    expect(() => new GraphModelEncoder(model, { node: 'nope', ownsModel: false })).toThrow(/could not run the graph to node 'nope'/);
  });
});

describe("nsfwjs' bundled MobileNetV2 (offline)", () => {
  let enc: VisionEncoder & LayersModelEncoder;
  let beforeLoad = 0;
  beforeAll(async () => {
    beforeLoad = tf.memory().numTensors;
    enc = await loadNsfwjsMobileNetV2Encoder();
  }, 120_000);
  afterAll(() => {
    enc?.dispose();
    // loading and disposing the encoder leaves nothing behind (nsfwjs' own scalar included)
    expect(tf.memory().numTensors).toBe(beforeLoad);
  });

  test('cut at block_13_expand_relu, 2×2 pooled: [b, 49, 576]; frozen; no leaks', () => {
    expect(enc.numTokens).toBe(49);
    expect(enc.tokenWidth).toBe(576);
    expect(enc.preprocessing).toEqual(mobileNetPreprocessing(224));
    expect(enc.model.trainableWeights).toHaveLength(0);
    expect(enc.model.weights.every((w) => !w.read().trainable)).toBe(true);
    const img = { data: new Uint8Array(160 * 120 * 4).map((_, i) => (i * 37) % 256), width: 160, height: 120 };
    const pixels = preprocessImages([img, img], enc.preprocessing);
    expect(pixels.shape).toEqual([2, 224, 224, 3]);
    const [lo, hi] = tf.tidy(() => [pixels.min().dataSync()[0]!, pixels.max().dataSync()[0]!]);
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
    const before = tf.memory().numTensors;
    const tokens = enc.encode(pixels);
    expect(tokens.shape).toEqual([2, 49, 576]);
    const min = tokens.min();
    expect(min.dataSync()[0]).toBeGreaterThanOrEqual(0); // after ReLU6
    tf.dispose([tokens, min]);
    expect(tf.memory().numTensors).toBe(before);
    pixels.dispose();
  });

  test('NSFWJS_MOBILENET_V2_COLOUR_CUT: block_6_expand_relu 4×4 pooled → 49 tokens × 192, the means of the unpooled 28×28 map', () => {
    expect(NSFWJS_MOBILENET_V2_COLOUR_CUT).toEqual({ layer: 'block_6_expand_relu', pool: 4 });
    const colour = new LayersModelEncoder(enc.model, { ...NSFWJS_MOBILENET_V2_COLOUR_CUT, ownsModel: false, preprocessing: enc.preprocessing });
    const full = new LayersModelEncoder(enc.model, { layer: NSFWJS_MOBILENET_V2_COLOUR_CUT.layer, pool: 1, ownsModel: false, preprocessing: enc.preprocessing });
    expect([colour.numTokens, colour.tokenWidth]).toEqual([49, 192]);
    const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 12);
    const before = tf.memory().numTensors;
    const t49 = colour.encode(x);
    const t784 = full.encode(x);
    expect(t49.shape).toEqual([1, 49, 192]);
    expect(t784.shape).toEqual([1, 784, 192]);
    const mean = tf.tidy(() => tf.mean(tf.reshape(tf.slice(tf.reshape(t784, [1, 28, 28, 192]), [0, 0, 0, 0], [1, 4, 4, 192]), [16, 192]), 0));
    const first = tf.tidy(() => tf.reshape(tf.slice(t49, [0, 0, 0], [1, 1, 192]), [192]));
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(mean, first))).dataSync()[0])).toBeLessThan(1e-4);
    tf.dispose([t49, t784, mean, first]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    colour.dispose();
    full.dispose();
  });

  test('unpooled: 196 tokens of 576, whose 2×2 means are the pooled tokens', () => {
    const unpooled = new LayersModelEncoder(enc.model, { layer: 'block_13_expand_relu', pool: 1, ownsModel: false, preprocessing: enc.preprocessing });
    expect(unpooled.numTokens).toBe(196);
    const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 11);
    const t196 = unpooled.encode(x);
    const t49 = enc.encode(x);
    expect(t196.shape).toEqual([1, 196, 576]);
    const mean = tf.tidy(() => tf.mean(tf.reshape(tf.slice(tf.reshape(t196, [1, 14, 14, 576]), [0, 0, 0, 0], [1, 2, 2, 576]), [4, 576]), 0));
    const first = tf.tidy(() => tf.reshape(tf.slice(t49, [0, 0, 0], [1, 1, 576]), [576]));
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(mean, first))).dataSync()[0])).toBeLessThan(1e-4);
    tf.dispose([x, t196, t49, mean, first]);
    unpooled.dispose();
  });

  test.each([
    ['block_13_expand_relu (default)', { layer: 'block_13_expand_relu', pool: 2 }],
    ['block_6_expand_relu (NSFWJS_MOBILENET_V2_COLOUR_CUT)', NSFWJS_MOBILENET_V2_COLOUR_CUT],
  ])('batch norm folded into the convolutions at %s: the tokens of the unfolded model, every BN folded', (_, cut) => {
    const before = tf.memory().numTensors;
    const folded = new LayersModelEncoder(enc.model, { ...cut, ownsModel: false, preprocessing: enc.preprocessing });
    const unfolded = new LayersModelEncoder(enc.model, { ...cut, ownsModel: false, preprocessing: enc.preprocessing, foldBatchNorm: false });
    const bns = folded.cut.layers.filter((l) => l.getClassName() === 'BatchNormalization').length;
    expect(bns).toBeGreaterThan(10);
    expect(folded.foldedBatchNorms).toBe(bns);
    expect(unfolded.foldedBatchNorms).toBe(0);
    const img = { data: new Uint8Array(200 * 150 * 4).map((_, i) => (i * 53 + (i >> 9)) % 256), width: 200, height: 150 };
    const x = tf.tidy(() => tf.concat([preprocessImages([img], enc.preprocessing), tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 13)]));
    const mid = tf.memory().numTensors;
    const got = folded.encode(x);
    const want = unfolded.encode(x);
    expect(got.shape).toEqual(want.shape);
    const [maxAbs, scale] = tf.tidy(() => [tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!, tf.max(tf.abs(want)).dataSync()[0]!]);
    console.log(`nsfwjs MobileNetV2 @ ${cut.layer} (${tf.getBackend()}): folded vs unfolded max |Δ| ${maxAbs.toExponential(2)}, relative to max |token| ${scale.toFixed(3)}: ${(maxAbs / scale).toExponential(2)}`);
    expect(scale).toBeGreaterThan(0.5);
    expect(maxAbs / scale).toBeLessThan(1e-4);
    tf.dispose([got, want, x]);
    expect(tf.memory().numTensors).toBe(mid - 1);
    folded.dispose();
    unfolded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
