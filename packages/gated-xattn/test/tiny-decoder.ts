// A small but real GPT-2-style decoder built from @vlm/core pieces, implementing DecoderLM:
// learned positions, pre-LN blocks with causal multi-head self-attention and a KV cache, tied head.
import * as tf from '@tensorflow/tfjs-core';
import {
  Embedding,
  FeedForward,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  appendKV,
  linear,
  runDecoder,
  scaledDotProductAttention,
  type DecoderForwardArgs,
  type DecoderLM,
  type DecoderLayerContext,
  type DecoderLayerOutput,
  type DecoderOutput,
  type LayerKV,
} from '@vlm/core';

export interface TinyDecoderArgs {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
}

class TinyBlock extends Module {
  readonly ln1: LayerNorm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly ln2: LayerNorm;
  readonly mlp: FeedForward;
  constructor(readonly dim: number, readonly heads: number) {
    super();
    this.ln1 = this.registerModule('ln_1', new LayerNorm({ dim }));
    this.qkv = this.registerModule('c_attn', new Linear({ inFeatures: dim, outFeatures: 3 * dim }));
    this.proj = this.registerModule('c_proj', new Linear({ inFeatures: dim, outFeatures: dim }));
    this.ln2 = this.registerModule('ln_2', new LayerNorm({ dim }));
    this.mlp = this.registerModule('mlp', new FeedForward({ dim, mult: 4 }));
  }
  forward(x: tf.Tensor, ctx: DecoderLayerContext, past?: LayerKV): DecoderLayerOutput {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(this.qkv.forward(this.ln1.forward(x)), 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
      const present = appendKV(past, k, v, 1); // [b, past + t, dim]
      const a = scaledDotProductAttention(q, present.key, present.value, { heads: this.heads, allowed: ctx.allowed });
      const h = tf.add(x, this.proj.forward(a));
      return { hidden: tf.add(h, this.mlp.forward(this.ln2.forward(h))), present } as unknown as tf.TensorContainer;
    }) as unknown as DecoderLayerOutput;
  }
}

export class TinyDecoder extends Module implements DecoderLM {
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: ModuleList<TinyBlock>;
  readonly lnF: LayerNorm;
  constructor(args: TinyDecoderArgs) {
    super();
    this.numLayers = args.numLayers;
    this.hiddenSize = args.hiddenSize;
    this.vocabSize = args.vocabSize;
    this.wte = this.registerModule('wte', new Embedding({ numEmbeddings: args.vocabSize, embeddingDim: args.hiddenSize }));
    this.wpe = this.registerModule('wpe', new Embedding({ numEmbeddings: args.maxPositions, embeddingDim: args.hiddenSize }));
    this.h = this.registerModule('h', new ModuleList(Array.from({ length: args.numLayers }, () => new TinyBlock(args.hiddenSize, args.numHeads))));
    this.lnF = this.registerModule('ln_f', new LayerNorm({ dim: args.hiddenSize }));
  }
  embedTokens(inputIds: tf.Tensor): tf.Tensor {
    return this.wte.forward(inputIds);
  }
  embedInputs(inputsEmbeds: tf.Tensor, context: DecoderLayerContext): tf.Tensor {
    return tf.tidy(() => tf.add(inputsEmbeds, this.wpe.forward(context.positionIds)));
  }
  forwardLayer(layer: number, hidden: tf.Tensor, context: DecoderLayerContext, past?: LayerKV): DecoderLayerOutput {
    return this.h.get(layer).forward(hidden, context, past);
  }
  finalNorm(hidden: tf.Tensor): tf.Tensor {
    return this.lnF.forward(hidden);
  }
  lmHead(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() => linear(hidden, tf.transpose(this.wte.weight), null)); // tied to wte
  }
  forward(args: DecoderForwardArgs): DecoderOutput {
    return runDecoder(this, args);
  }
}
