import * as tf from '@tensorflow/tfjs-core';
import { lazyGradOp } from './lazy-grad';
import { hasKernels } from './optional-kernels';
import { sumRows } from './matmul';
import { Module } from './module';
import { assertDtype, assertShape } from './shape-checks';

/**
 * Name of an optional kernel that a package may register for a backend (as `@vlm/native-matmul`
 * does for wasm and cpu in Node): `{ x, gamma?, beta? }`, attrs `{ eps }` → `[y, mean, rstd]`,
 * LayerNorm over the last axis of a float32 `x` (`gamma`, `beta`: `[width]`, both or neither);
 * `mean` and `rstd = 1/√(var + eps)` have `x`'s shape without the last axis. Where it,
 * {@link LAYER_NORM_GRAD_KERNEL} and {@link LAYER_NORM_PARAM_GRAD_KERNEL} are registered for
 * the active backend, {@link LayerNorm} runs them instead of its composed elementwise kernels.
 */
export const LAYER_NORM_KERNEL = 'VlmLayerNorm';
/** Name of the optional kernel `{ dy, x, mean, rstd, gamma? } → dx` paired with {@link LAYER_NORM_KERNEL}. */
export const LAYER_NORM_GRAD_KERNEL = 'VlmLayerNormGrad';
/**
 * Name of the optional kernel `{ dy, x, mean, rstd } → [dgamma, dbeta]` (sums over every row of
 * `dy·x̂` and of `dy`, `[width]` each) paired with {@link LAYER_NORM_KERNEL}.
 */
export const LAYER_NORM_PARAM_GRAD_KERNEL = 'VlmLayerNormParamGrad';

/** Constructor arguments of {@link LayerNorm}. */
export interface LayerNormArgs {
  /** Size of the normalised (last) dimension. */
  dim: number;
  /** Added to the variance. Default: `1e-5` (PyTorch's; BERT and the Q-Former use `1e-12`). */
  eps?: number;
  /** Learn `weight` and `bias`. Default: `true`. */
  elementwiseAffine?: boolean;
}

/**
 * `torch.nn.LayerNorm` over the last dimension, with biased variance:
 * `(x - mean) / sqrt(var + eps) * weight + bias`. State-dict keys `weight`, `bias` `[dim]`.
 * Runs as one kernel forward and two backward where {@link LAYER_NORM_KERNEL} and its gradient
 * kernels are registered for the backend.
 *
 * @example
 * ```ts
 * const ln = new LayerNorm({ dim: 32, eps: 1e-12 });
 * ln.forward(tf.randomNormal([2, 5, 32])).shape; // [2, 5, 32]
 * ```
 */
export class LayerNorm extends Module {
  /** Size of the normalised (last) dimension. */
  readonly dim: number;
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Whether `weight` and `bias` are learned. */
  readonly elementwiseAffine: boolean;

  constructor(args: LayerNormArgs) {
    super();
    this.dim = args.dim;
    this.eps = args.eps ?? 1e-5;
    this.elementwiseAffine = args.elementwiseAffine ?? true;
    if (this.elementwiseAffine) {
      this.registerParameter('weight', { shape: [this.dim], init: () => tf.ones([this.dim]) });
      this.registerParameter('bias', { shape: [this.dim], init: () => tf.zeros([this.dim]) });
    }
  }

  /** `[..., dim] → [..., dim]`. */
  forward(x: tf.Tensor): tf.Tensor {
    if (!(x instanceof tf.Tensor) || x.isDisposed) assertShape(x, [this.dim], 'LayerNorm input'); // throws, naming what came
    if (x.shape[x.rank - 1] !== this.dim) assertShape(x, [...x.shape.slice(0, -1), this.dim], 'LayerNorm input');
    if (x.dtype !== 'float32') assertDtype(x, ['float32'], 'LayerNorm input');
    const affine = this.elementwiseAffine;
    const inputs = affine ? [x, this.parameter('weight'), this.parameter('bias')] : [x];
    if (hasKernels([LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_PARAM_GRAD_KERNEL])) return this.forwardKernels(inputs);
    // The closed-form gradient: a handful of row-wise ops instead of autodiff through moments,
    // and weight/bias gradients as row sums (fast on wasm, see `sumRows`).
    return lazyGradOp(
      inputs,
      (keep) => {
        const [xhat, rstd] = tf.tidy(() => {
          const { mean, variance } = tf.moments(x, -1, true);
          const r = tf.rsqrt(tf.add(variance, this.eps));
          return [tf.mul(tf.sub(x, mean), r), r];
        });
        keep([xhat!, rstd!]);
        return affine ? tf.tidy(() => tf.add(tf.mul(xhat!, inputs[1]!), inputs[2]!)) : xhat!;
      },
      (dy, saved) => {
        const [xhat, rstd] = saved.slice(inputs.length) as [tf.Tensor, tf.Tensor];
        const rows = (t: tf.Tensor) => tf.reshape(t, [-1, this.dim]);
        // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · weight
        const dx = () => {
          const g = affine ? tf.mul(dy, saved[1]!) : dy;
          return tf.mul(rstd, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))));
        };
        if (!affine) return [dx];
        return [dx, () => sumRows(rows(tf.mul(dy, xhat))), () => sumRows(rows(dy))];
      },
    );
  }

  /** The forward and backward through the registered LayerNorm kernels. */
  private forwardKernels(inputs: tf.Tensor[]): tf.Tensor {
    const engine = tf.engine();
    const [x, gamma, beta] = inputs as [tf.Tensor, tf.Tensor?, tf.Tensor?];
    return lazyGradOp(
      inputs,
      (keep) => {
        const [y, mean, rstd] = engine.runKernel(LAYER_NORM_KERNEL, gamma ? { x, gamma, beta: beta! } : { x }, { eps: this.eps }) as tf.Tensor[];
        keep([mean!, rstd!]);
        return y!;
      },
      (dy, saved) => {
        const [xs, gs] = [saved[0]!, gamma ? saved[1] : undefined];
        const [mean, rstd] = saved.slice(inputs.length) as [tf.Tensor, tf.Tensor];
        const dx = () => engine.runKernel(LAYER_NORM_GRAD_KERNEL, gs ? { dy, x: xs, mean, rstd, gamma: gs } : { dy, x: xs, mean, rstd }) as tf.Tensor;
        if (!gamma) return [dx];
        // The tape asks only for the gradients on the path to what is differentiated, one thunk
        // at a time, so dweight cannot hand dbias to a later thunk: dweight takes the kernel's
        // first output, dbias is a row sum of dy alone (a native product here; it skips x).
        const dweight = () => {
          const [dg, db] = engine.runKernel(LAYER_NORM_PARAM_GRAD_KERNEL, { dy, x: xs, mean, rstd }) as tf.Tensor[];
          db!.dispose();
          return dg!;
        };
        return [dx, dweight, () => sumRows(tf.reshape(dy, [-1, this.dim]))];
      },
    );
  }
}
