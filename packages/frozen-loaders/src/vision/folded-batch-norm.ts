import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

type Layer = tfl.layers.Layer;
type SymbolicTensor = tfl.SymbolicTensor;
/** A call of a layer in the graph (tfjs-layers' `Node`, which the package does not export by name). */
type LayerCall = Layer['inboundNodes'][number];
type FusedActivation = 'linear' | 'relu' | 'relu6';

/** A convolution with its batch norm folded in: one `tf.fused.conv2d` / `tf.fused.depthwiseConv2d`. */
interface FoldedConvolution {
  kind: 'folded';
  depthwise: boolean;
  /** `W·s` (per output channel). */
  filter: tf.Tensor4D;
  /** `β + (b − μ)·s`. */
  bias: tf.Tensor1D;
  strides: [number, number];
  pad: 'same' | 'valid';
  dilations: [number, number];
  activation: FusedActivation;
  input: number;
  output: number;
}

/** Any other layer, called as `predict` calls it. */
interface LayerStep {
  kind: 'layer';
  layer: Layer;
  inputs: number[];
  outputs: number[];
}

type Step = FoldedConvolution | LayerStep;

/**
 * Inference of a frozen functional `LayersModel` with every batch normalization that follows a
 * convolution folded into it: a `Conv2D` or `DepthwiseConv2D` whose only consumer is a
 * `BatchNormalization` becomes one fused convolution with the weights `W' = W·s` and bias
 * `b' = β + (b − μ)·s`, `s = γ/√(σ² + ε)` (computed once, owned by the plan), and a ReLU or ReLU6
 * that is the batch norm's only consumer rides in the fused op, as does a ZeroPadding2D before a
 * 'valid' convolution when it pads as 'same' would (MobileNetV2's stride-2 padding). Every other
 * layer runs through its own `layer.apply`, as `model.predict` runs it. Exact up to float rounding while the model's
 * weights do not change (the model is frozen).
 */
export class FoldedBatchNormPlan {
  /** How many batch normalizations were folded into a convolution. */
  readonly foldedBatchNorms: number;

  private constructor(
    private readonly steps: readonly Step[],
    private readonly inputId: number,
    private readonly outputId: number,
    /** How many steps read each symbolic tensor (the model output counts once more). */
    private readonly readers: ReadonlyMap<number, number>,
  ) {
    this.foldedBatchNorms = steps.filter((s) => s.kind === 'folded').length;
  }

  /**
   * Plans `model` (one input, one output), or returns `null` when its graph cannot be planned
   * (several inputs or outputs, a path from an input that is not the model's): the caller then runs
   * `model.predict`. Convolutions and batch norms whose configuration the fast path does not cover
   * (channels first, a batch norm over another axis, an activation on the convolution, a
   * convolution output read by more than the batch norm, a depthwise dilation) run through their own layers,
   * as do ReLUs other than plain ReLU / ReLU6 (another max value, a threshold, a negative slope).
   */
  static plan(model: tfl.LayersModel): FoldedBatchNormPlan | null {
    if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
    const input = model.inputs[0]!;
    const output = model.outputs[0]!;
    const calls = topologicalCalls(output, input);
    if (calls === null) return null;
    // Who reads each symbolic tensor.
    const readersOf = new Map<number, LayerCall[]>();
    for (const call of calls) {
      for (const t of call.inputTensors) readersOf.set(t.id, [...(readersOf.get(t.id) ?? []), call]);
    }
    const onlyReader = (t: SymbolicTensor): LayerCall | null => {
      const r = readersOf.get(t.id) ?? [];
      return r.length === 1 && t.id !== output.id ? r[0]! : null;
    };
    // Which calls fold into which convolution: its batch norm, the activation after it, and a
    // ZeroPadding2D before a 'valid' convolution that pads exactly as 'same' would.
    interface Group { convolution: Convolution; absorbs: LayerCall[]; bn: BatchNorm; activation: FusedActivation; pad: 'same' | 'valid'; input: SymbolicTensor; output: SymbolicTensor }
    const groups = new Map<LayerCall, Group>();
    const absorbed = new Set<LayerCall>();
    for (const call of calls) {
      const convolution = call.outputTensors.length === 1 ? convolutionOf(call) : null;
      const bnCall = convolution ? onlyReader(call.outputTensors[0]!) : null;
      const bn = bnCall ? batchNormOf(bnCall) : null;
      if (!convolution || !bnCall || !bn) continue;
      const actCall = onlyReader(bnCall.outputTensors[0]!);
      const activation = actCall ? fusableActivationOf(actCall) : null;
      const group: Group = {
        convolution,
        absorbs: activation ? [bnCall, actCall!] : [bnCall],
        bn,
        activation: activation ?? 'linear',
        pad: convolution.pad,
        input: call.inputTensors[0]!,
        output: (activation ? actCall! : bnCall).outputTensors[0]!,
      };
      const padded = group.input;
      const padCall = padded.sourceLayer.inboundNodes[padded.nodeIndex];
      if (convolution.pad === 'valid' && padCall && onlyReader(padded) === call && padsAsSame(padCall, convolution)) {
        group.pad = 'same';
        group.input = padCall.inputTensors[0]!;
        group.absorbs.push(padCall);
      }
      groups.set(call, group);
      for (const c of group.absorbs) absorbed.add(c);
    }
    const steps: Step[] = [];
    try {
      for (const call of calls) {
        if (absorbed.has(call)) continue;
        const g = groups.get(call);
        if (g) {
          const { filter, bias } = fold(g.convolution, g.bn);
          steps.push({
            kind: 'folded',
            depthwise: g.convolution.depthwise,
            filter,
            bias,
            strides: g.convolution.strides,
            pad: g.pad,
            dilations: g.convolution.dilations,
            activation: g.activation,
            input: g.input.id,
            output: g.output.id,
          });
        } else {
          steps.push({ kind: 'layer', layer: call.outboundLayer, inputs: call.inputTensors.map((t) => t.id), outputs: call.outputTensors.map((t) => t.id) });
        }
      }
    } catch (e) {
      for (const s of steps) if (s.kind === 'folded') tf.dispose([s.filter, s.bias]);
      throw e;
    }
    const readers = new Map<number, number>([[output.id, 1]]);
    for (const s of steps) {
      for (const id of s.kind === 'folded' ? [s.input] : s.inputs) readers.set(id, (readers.get(id) ?? 0) + 1);
    }
    return new FoldedBatchNormPlan(steps, input.id, output.id, readers);
  }

  /**
   * The model's output for `x` (the model's input, checked by the caller). Intermediate tensors are
   * disposed as soon as their last reader ran; `x` is never disposed.
   */
  run(x: tf.Tensor): tf.Tensor {
    const values = new Map<number, tf.Tensor>([[this.inputId, x]]);
    const left = new Map(this.readers);
    const release = (id: number) => {
      const n = (left.get(id) ?? 0) - 1;
      left.set(id, n);
      if (n > 0) return;
      const v = values.get(id);
      values.delete(id);
      // `layer.apply` clones an output that is one of its inputs (Dropout at inference), so no two ids share a tensor.
      if (v && v !== x) v.dispose();
    };
    for (const s of this.steps) {
      if (s.kind === 'folded') {
        const v = values.get(s.input)!;
        const common = { x: v as tf.Tensor4D, filter: s.filter, strides: s.strides, pad: s.pad, dataFormat: 'NHWC' as const, dilations: s.dilations, bias: s.bias, activation: s.activation };
        values.set(s.output, s.depthwise ? tf.fused.depthwiseConv2d(common) : tf.fused.conv2d(common));
        release(s.input);
      } else {
        const ins = s.inputs.map((id) => values.get(id)!);
        const outs = s.layer.apply(ins, {}) as tf.Tensor | tf.Tensor[];
        const list = Array.isArray(outs) ? outs : [outs];
        if (list.length !== s.outputs.length) {
          throw new Error(`FoldedBatchNormPlan: layer '${s.layer.name}' gave ${list.length} outputs where its graph has ${s.outputs.length}`);
        }
        s.outputs.forEach((id, i) => values.set(id, list[i]!));
        for (const id of s.inputs) release(id);
        // Outputs nobody reads (a multi-output layer's others).
        for (const id of s.outputs) if (!this.readers.has(id)) release(id);
      }
    }
    return values.get(this.outputId)!;
  }

  /** Releases the folded weights. */
  dispose(): void {
    for (const s of this.steps) if (s.kind === 'folded') tf.dispose([s.filter, s.bias]);
  }
}

/**
 * The layer calls that compute `output` from `input`, each after the calls it reads (depth-first
 * post-order), or `null` when the graph reaches an input other than `input`.
 */
function topologicalCalls(output: SymbolicTensor, input: SymbolicTensor): LayerCall[] | null {
  const order: LayerCall[] = [];
  const done = new Set<LayerCall>();
  const onPath = new Set<LayerCall>();
  const visit = (t: SymbolicTensor): boolean => {
    if (t.id === input.id) return true;
    const call = t.sourceLayer.inboundNodes[t.nodeIndex];
    if (!call || call.inputTensors.length === 0 || onPath.has(call)) return false; // another input (or a cycle)
    if (done.has(call)) return true;
    onPath.add(call);
    for (const i of call.inputTensors) if (!visit(i)) return false;
    onPath.delete(call);
    done.add(call);
    order.push(call);
    return true;
  };
  return visit(output) ? order : null;
}

interface Convolution {
  depthwise: boolean;
  kernel: tf.Tensor4D;
  bias: tf.Tensor1D | null;
  strides: [number, number];
  pad: 'same' | 'valid';
  dilations: [number, number];
}

function pair(v: unknown): [number, number] | null {
  const a = typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : null;
  return a && a.length === 2 && a.every((n) => Number.isInteger(n) && n > 0) ? [a[0], a[1]] : null;
}

/** A `Conv2D` / `DepthwiseConv2D` call the fast path covers (channels last, no activation of its own), or `null`. */
function convolutionOf(call: LayerCall): Convolution | null {
  const layer = call.outboundLayer;
  const cls = layer.getClassName();
  if ((cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') || call.inputTensors.length !== 1) return null;
  const config = layer.getConfig();
  const strides = pair(config['strides']);
  const dilations = pair(config['dilationRate'] ?? 1);
  const pad = config['padding'];
  if (config['dataFormat'] !== 'channelsLast' || config['activation'] !== 'linear' || !strides || !dilations || (pad !== 'same' && pad !== 'valid')) return null;
  const depthwise = cls === 'DepthwiseConv2D';
  // tfjs-layers' DepthwiseConv2D does not apply its dilation rate: leave such a layer to itself.
  if (depthwise && (dilations[0] !== 1 || dilations[1] !== 1)) return null;
  const weights = layer.weights.map((w) => w.read());
  const useBias = config['useBias'] !== false;
  if (weights.length !== (useBias ? 2 : 1)) return null;
  const [kernel, bias] = weights;
  if (kernel!.rank !== 4 || kernel!.dtype !== 'float32') return null;
  const channels = depthwise ? kernel!.shape[2]! * kernel!.shape[3]! : kernel!.shape[3]!;
  if (bias && (bias.rank !== 1 || bias.shape[0] !== channels)) return null;
  if (depthwise && config['depthMultiplier'] !== undefined && config['depthMultiplier'] !== kernel!.shape[3]) return null;
  return { depthwise, kernel: kernel as tf.Tensor4D, bias: (bias as tf.Tensor1D | undefined) ?? null, strides, pad, dilations };
}

/**
 * Whether `call` is a channels-last ZeroPadding2D of a static `[b, h, w, c]` whose padding is
 * the one TF's 'same' gives `conv` (`total = max((⌈n/s⌉ − 1)·s + (k − 1)·d + 1 − n, 0)`, the
 * smaller half first): then pad → 'valid' conv is the conv with 'same'.
 */
function padsAsSame(call: LayerCall, conv: Convolution): boolean {
  const layer = call.outboundLayer;
  if (layer.getClassName() !== 'ZeroPadding2D' || call.inputTensors.length !== 1) return false;
  const config = layer.getConfig();
  const padding = config['padding'];
  const shape = call.inputTensors[0]!.shape;
  if (config['dataFormat'] !== 'channelsLast' || shape.length !== 4 || !Array.isArray(padding) || padding.length !== 2) return false;
  const kernel = conv.kernel.shape;
  return [0, 1].every((axis) => {
    const n = shape[axis + 1];
    const p = padding[axis] as unknown;
    if (typeof n !== 'number' || !Array.isArray(p) || p.length !== 2) return false;
    const s = conv.strides[axis]!;
    const extent = (kernel[axis]! - 1) * conv.dilations[axis]! + 1;
    const total = Math.max((Math.ceil(n / s) - 1) * s + extent - n, 0);
    const before = Math.floor(total / 2);
    return p[0] === before && p[1] === total - before;
  });
}

interface BatchNorm {
  gamma: tf.Tensor1D | null;
  beta: tf.Tensor1D | null;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  epsilon: number;
}

/** A `BatchNormalization` over the last axis of a 4-D tensor, or `null`. */
function batchNormOf(call: LayerCall): BatchNorm | null {
  const layer = call.outboundLayer;
  if (layer.getClassName() !== 'BatchNormalization' || call.inputTensors.length !== 1 || call.outputTensors.length !== 1) return null;
  const config = layer.getConfig();
  const rank = call.inputTensors[0]!.shape.length;
  const axis = config['axis'];
  if (rank !== 4 || (axis !== -1 && axis !== rank - 1)) return null;
  const epsilon = config['epsilon'];
  if (typeof epsilon !== 'number' || !(epsilon >= 0)) return null;
  const scale = config['scale'] !== false;
  const center = config['center'] !== false;
  // tfjs-layers builds them in this order: gamma (scale), beta (center), moving mean, moving variance.
  const weights = layer.weights.map((w) => w.read());
  if (weights.length !== (scale ? 1 : 0) + (center ? 1 : 0) + 2 || weights.some((w) => w.rank !== 1 || w.dtype !== 'float32')) return null;
  const gamma = scale ? weights.shift()! : null;
  const beta = center ? weights.shift()! : null;
  const [mean, variance] = weights as [tf.Tensor1D, tf.Tensor1D];
  return { gamma: gamma as tf.Tensor1D | null, beta: beta as tf.Tensor1D | null, mean, variance, epsilon };
}

/** `'relu'` / `'relu6'` for a plain ReLU, ReLU(max 6) or Activation('relu' | 'relu6') call, else `null`. */
function fusableActivationOf(call: LayerCall): FusedActivation | null {
  const layer = call.outboundLayer;
  if (call.inputTensors.length !== 1 || call.outputTensors.length !== 1) return null;
  const config = layer.getConfig();
  const cls = layer.getClassName();
  if (cls === 'ReLU') {
    for (const k of ['threshold', 'negativeSlope']) if (config[k] != null && config[k] !== 0) return null;
    const max = config['maxValue'];
    return max == null ? 'relu' : max === 6 ? 'relu6' : null;
  }
  if (cls === 'Activation') {
    const a = config['activation'];
    return a === 'relu' || a === 'relu6' ? a : null;
  }
  return null;
}

/** `W' = W·s`, `b' = β + (b − μ)·s`, `s = γ/√(σ² + ε)`, per output channel. */
function fold(conv: Convolution, bn: BatchNorm): { filter: tf.Tensor4D; bias: tf.Tensor1D } {
  const channels = conv.depthwise ? conv.kernel.shape[2] * conv.kernel.shape[3] : conv.kernel.shape[3];
  if (bn.mean.shape[0] !== channels) {
    throw new Error(`FoldedBatchNormPlan: a batch norm over ${bn.mean.shape[0]} channels follows a convolution with ${channels} output channels`);
  }
  return tf.tidy(() => {
    const inv = tf.rsqrt(tf.add(bn.variance, tf.scalar(bn.epsilon)));
    const s = bn.gamma ? tf.mul(bn.gamma, inv) : inv;
    const sKernel = conv.depthwise ? tf.reshape(s, [conv.kernel.shape[2], conv.kernel.shape[3]]) : s;
    const filter = tf.mul(conv.kernel, sKernel) as tf.Tensor4D;
    const centred = conv.bias ? tf.sub(conv.bias, bn.mean) : tf.neg(bn.mean);
    const scaled = tf.mul(centred, s);
    const bias = (bn.beta ? tf.add(scaled, bn.beta) : scaled) as tf.Tensor1D;
    return { filter, bias };
  });
}
