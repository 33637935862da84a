import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm, Linear, Module } from '@vlm/core';
import { Adam, AdamW, SGD, Trainer, lrSchedule, namedParameters, paramGroups, type Dataset, type LrSchedule, type Optimizer } from '@vlm/train';
import { paramsOf, tensorOf, type GoldenAdapter, type GoldenCase } from '../golden-case';

/** The golden's TinyNet: `fc2(tanh(norm(fc1(x)))) · tanh(gate)`, PyTorch names. */
class TinyNet extends Module {
  readonly fc1: Linear;
  readonly norm: LayerNorm;
  readonly fc2: Linear;
  constructor(config: { in: number; hidden: number; out: number }) {
    super();
    this.registerParameter('gate', tf.zeros([1]));
    this.fc1 = this.registerModule('fc1', new Linear({ inFeatures: config.in, outFeatures: config.hidden }));
    this.norm = this.registerModule('norm', new LayerNorm({ dim: config.hidden }));
    this.fc2 = this.registerModule('fc2', new Linear({ inFeatures: config.hidden, outFeatures: config.out }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.mul(this.fc2.forward(tf.tanh(this.norm.forward(this.fc1.forward(x)))), tf.tanh(this.parameter('gate'))));
  }
}

/** What {@link trainRun} varies between cases. */
interface RunSpec {
  optimizer: (net: TinyNet) => Optimizer;
  schedule: LrSchedule;
  steps: number;
  accumulationSteps: number;
  clipGradNorm?: number;
}

/**
 * Trains a TinyNet loaded from the case with @vlm/train's Trainer on the case's micro-batches in
 * order (example i is micro-batch i; step s uses accumulationSteps·s …) and returns, under
 * `output.<prefix>…`, the weights after every step (PyTorch layout), the losses, the gradient
 * norms before clipping and the first group's (or every group's) learning rates.
 */
async function trainRun(c: GoldenCase, prefix: string, spec: RunSpec): Promise<{ out: Record<string, tf.Tensor>; lrs: number[][]; norms: number[] }> {
  const net = new TinyNet(c.sidecar.config);
  net.loadStateDict(paramsOf(c));
  const optimizer = spec.optimizer(net);
  const [x, y] = [tensorOf(c, 'input.x'), tensorOf(c, 'input.y')];
  const data: Dataset<{ x: tf.Tensor; y: tf.Tensor }> = {
    size: x.shape[0]!,
    batch: ([i]) => tf.tidy(() => ({ x: tf.squeeze(tf.slice(x, i!, 1), [0]), y: tf.squeeze(tf.slice(y, i!, 1), [0]) })),
  };
  const trainer = new Trainer({
    optimizer,
    data,
    batchSize: 1,
    shuffle: false,
    steps: spec.steps,
    accumulationSteps: spec.accumulationSteps,
    schedule: spec.schedule,
    loss: (b) => tf.mean(tf.square(tf.sub(net.forward(b.x), b.y))) as tf.Scalar,
    ...(spec.clipGradNorm !== undefined ? { clipGradNorm: spec.clipGradNorm } : {}),
  });
  const weights: Record<string, tf.Tensor[]> = {};
  const losses: number[] = [];
  const norms: number[] = [];
  const lrs: number[][] = [];
  try {
    for (let s = 0; s < spec.steps; s++) {
      const m = await trainer.trainStep();
      losses.push(m.loss);
      norms.push(m.gradNorm);
      lrs.push(optimizer.groups.map((g) => m.lrs[g.name]!));
      for (const [name, v] of net.namedParameters()) (weights[name] ??= []).push(net.toStateDictLayout(name, v));
    }
    const out: Record<string, tf.Tensor> = { [`output.${prefix}loss`]: tf.tensor1d(losses) };
    for (const [name, list] of Object.entries(weights)) out[`output.${prefix}weights.${name}`] = tf.stack(list);
    return { out, lrs, norms };
  } finally {
    for (const list of Object.values(weights)) tf.dispose(list);
    trainer.dispose();
    net.dispose();
  }
}

/**
 * `TrainerAdamW` cases (golden/scripts/make_train_golden.py): AdamW with the case's parameter
 * groups, the warm-up + cosine schedule, clipping and accumulation; also compares the gradient
 * norms before clipping and each group's learning rate.
 */
const trainerAdamW: GoldenAdapter = async (c: GoldenCase) => {
  const t = c.sidecar.train;
  const { out, lrs, norms } = await trainRun(c, '', {
    optimizer: (net) =>
      new AdamW(
        paramGroups(
          namedParameters(net),
          (t.param_groups as Array<{ name: string; params: string[]; lr: number; weight_decay: number }>).map((g) => ({
            name: g.name,
            match: (p) => g.params.includes(p.name),
            lr: g.lr,
            weightDecay: g.weight_decay,
          })),
        ),
        { betas: t.optimizer.betas, eps: t.optimizer.eps },
      ),
    schedule: lrSchedule({ kind: 'cosine', warmupSteps: t.schedule.warmup_steps, trainingSteps: t.schedule.training_steps, numCycles: t.schedule.num_cycles }),
    steps: t.steps,
    accumulationSteps: t.accumulation_steps,
    clipGradNorm: t.max_grad_norm,
  });
  return { ...out, 'output.grad_norm': tf.tensor1d(norms), 'output.lr': tf.tensor2d(lrs) };
};

/** `TrainerOptimizers` cases: Adam + linear schedule, SGD (momentum) + constant schedule, Nesterov SGD. */
const trainerOptimizers: GoldenAdapter = async (c: GoldenCase) => {
  const t = c.sidecar.train;
  const result: Record<string, tf.Tensor> = {};
  for (const [key, run] of Object.entries(t.runs as Record<string, { optimizer: Record<string, any>; schedule: Record<string, any> }>)) {
    const o = run.optimizer;
    const make = (net: TinyNet): Optimizer => {
      const params = namedParameters(net);
      if (o.class === 'torch.optim.Adam') return new Adam(params, { lr: o.lr, weightDecay: o.weight_decay });
      if (o.class === 'torch.optim.SGD') return new SGD(params, { lr: o.lr, momentum: o.momentum, dampening: o.dampening, weightDecay: o.weight_decay, nesterov: o.nesterov });
      throw new Error(`case ${c.name}: unknown optimizer ${o.class}`);
    };
    const sc = run.schedule;
    const schedule = lrSchedule({ kind: sc.kind, warmupSteps: sc.warmup_steps, ...(sc.training_steps !== undefined ? { trainingSteps: sc.training_steps } : {}) });
    const { out, lrs } = await trainRun(c, `${key}.`, { optimizer: make, schedule, steps: t.steps, accumulationSteps: 1 });
    Object.assign(result, out, { [`output.${key}.lr`]: tf.tensor1d(lrs.map((l) => l[0]!)) });
  }
  return result;
};

/** Adapters of @vlm/train's conformance cases, by sidecar module name. */
export const trainAdapters: Record<string, GoldenAdapter> = {
  TrainerAdamW: trainerAdamW,
  TrainerOptimizers: trainerOptimizers,
};
