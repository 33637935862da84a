import * as tf from '@tensorflow/tfjs-core';
import type { GoldenCase } from './golden-case';

/** The outcome of one case. */
export interface CaseReport {
  name: string;
  module: string;
  pass: boolean;
  /** The worst key: its largest |error| / (atol + rtol·|golden|) and max abs error. */
  worst: string;
  detail?: string;
}

interface Tolerance {
  atol: number;
  rtol: number;
}

const DEFAULT_TOLERANCE = { forward: { atol: 1e-4, rtol: 1e-4 }, grad: { atol: 1e-3, rtol: 1e-3 } };

/**
 * Compares every `output.*` and `grad_*` tensor of the case with what the adapter computed:
 * `|actual - golden| <= atol + rtol·|golden|` elementwise, forward tolerance for outputs,
 * gradient tolerance for gradients. A golden key the adapter did not compute fails the case.
 * An adapter may also return `mask.<key>`, broadcastable to `<key>`'s shape: elements where it is
 * 0 are not compared (e.g. left-pad positions, whose values are implementation-defined).
 */
export function compareCase(c: GoldenCase, module: string, computed: Record<string, tf.Tensor>): CaseReport {
  const tol = { ...DEFAULT_TOLERANCE, ...(c.sidecar.tolerance ?? {}) } as { forward: Tolerance; grad: Tolerance };
  const expectedKeys = Object.keys(c.tensors).filter((k) => k.startsWith('output.') || k.startsWith('grad_'));
  const problems: string[] = [];
  let worstRatio = -1;
  let worst = '';
  for (const key of expectedKeys) {
    const golden = c.tensors[key]!;
    const actual = computed[key];
    if (!actual) {
      problems.push(`${key} not computed`);
      continue;
    }
    if (actual.shape.join() !== golden.shape.join()) {
      problems.push(`${key} shape [${actual.shape}] != golden [${golden.shape}]`);
      continue;
    }
    const t = key.startsWith('grad_') ? tol.grad : tol.forward;
    const [ratio, maxAbs, bad] = tf.tidy(() => {
      const g = tf.cast(golden, 'float32');
      const m = computed[`mask.${key}`];
      const keep = m ? tf.notEqual(tf.broadcastTo(tf.cast(m, 'float32'), g.shape), 0) : null;
      const a = keep ? tf.where(keep, tf.cast(actual, 'float32'), g) : tf.cast(actual, 'float32');
      const err = tf.abs(tf.sub(a, g));
      const allowed = tf.add(t.atol, tf.mul(t.rtol, tf.abs(g)));
      const r = tf.div(err, allowed);
      // NaN anywhere fails
      const nan = tf.any(tf.isNaN(a)).dataSync()[0]!;
      return [tf.max(r).dataSync()[0]!, tf.max(err).dataSync()[0]!, nan];
    });
    if (bad || !(ratio <= 1)) problems.push(`${key} off by ${maxAbs.toExponential(2)} (${ratio.toFixed(2)}× tolerance)`);
    if (ratio > worstRatio || Number.isNaN(ratio)) {
      worstRatio = ratio;
      worst = `worst ${key} err ${maxAbs.toExponential(2)} (${ratio.toFixed(3)}× tol)`;
    }
  }
  return { name: c.name, module, pass: problems.length === 0, worst, detail: problems.slice(0, 4).join('; ') };
}
