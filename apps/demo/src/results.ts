import type { HeldOut } from './evaluate';

/** `results.json`: the fields the issue lists are a contract (tests and users read them). */
export interface DemoResults {
  flamingo: {
    heldout: HeldOut;
    /** `tanh(α)` of every gate per layer over training. */
    gates: Array<{ step: number; layer: number; attn: number; ff: number }>;
    gate_ablation: Array<{ layer: number | 'all'; caption_color: number; caption_shape: number }>;
    /**
     * Per layer, after training: the gated updates' size against the hidden states they are added
     * to, ‖tanh(α)·update‖ / ‖hidden‖, averaged over the held-out captions' tokens.
     */
    gate_contribution: Array<{ layer: number; attn: number; ff: number }>;
    loss: Array<{ step: number; loss: number }>;
    train_seconds: number;
    trainable_parameters: number;
  };
  blip2: {
    heldout: HeldOut;
    retrieval: { i2t_r1: number; t2i_r1: number };
    stage1_loss: Array<{ step: number; loss: number }>;
    loss: Array<{ step: number; loss: number }>;
    train_seconds: number;
    trainable_parameters: number;
  };
  baselines: {
    lm_only: HeldOut;
    mlp_projector: HeldOut & { loss: Array<{ step: number; loss: number }>; train_seconds: number; trainable_parameters: number };
  };
  qformer_probe: {
    query_cosine: number[][];
    across_images: number[];
    per_query: Array<{ query: number; color: number; shape: number; size: number; position: number }>;
    chance: Record<string, number>;
    images: number;
  };
  /** `null`: the prompt does not fit the LM's positions (e.g. 5 images × 32 BLIP-2 queries). */
  few_shot: Record<'flamingo' | 'blip2' | 'lm_only', Record<'0' | '2' | '4', number | null>>;
  /** The same on the held-out two-attribute tasks (colour–shape, size–shape) that no training episode has. */
  few_shot_mixtures: Record<'flamingo' | 'blip2' | 'lm_only', Record<'0' | '2' | '4', number | null>>;
  few_shot_vqa: Record<'flamingo' | 'blip2' | 'lm_only', Record<'0' | '2' | '3', number | null>>;
  samples: Array<{
    image: string;
    truth: string;
    question: string;
    answer: string;
    flamingo: { caption: string; answer: string };
    blip2: { caption: string; answer: string };
    mlp_projector: { caption: string; answer: string };
    lm_only: { caption: string; answer: string };
  }>;
  bridges: Record<string, { weights: string; config: string }>;
  seconds: number;
  configuration: Record<string, unknown>;
}
