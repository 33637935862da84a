import * as tf from '@tensorflow/tfjs-core';

/** A gradient computed only when the tape asks for it. */
export type Thunk = () => tf.Tensor;

// `customGrad` is built on the engine's `runKernelFunc`, but computes the gradient of EVERY
// input eagerly. Called directly, `runKernelFunc` takes one thunk per input and the tape only
// calls those on the path to the differentiated variables: a weight's gradient never pays
// for dX of a constant input (e.g. the frozen vision features going into a kv projection).
interface LazyGradEngine {
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: tf.GradSaveFunc) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, Thunk>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor;
}

/**
 * An op with one lazily computed gradient per input. `forward` may hand intermediates to
 * `keep`; `grads` then gets the inputs followed by those, as `saved`.
 */
export function lazyGradOp(
  inputs: tf.Tensor[],
  forward: (keep: (intermediates: tf.Tensor[]) => void) => tf.Tensor,
  grads: (dy: tf.Tensor, saved: tf.Tensor[]) => Thunk[],
): tf.Tensor {
  return (tf.engine() as unknown as LazyGradEngine).runKernelFunc({
    forwardFunc: (_, save) => {
      let kept: tf.Tensor[] = [];
      const out = forward((intermediates) => (kept = intermediates));
      save([...inputs, ...kept]);
      return out;
    },
    backwardsFunc: (dy, saved) => Object.fromEntries(grads(dy, saved).map((g, i) => [String(i), g])),
    inputs: Object.fromEntries(inputs.map((t, i) => [String(i), t])),
  });
}
