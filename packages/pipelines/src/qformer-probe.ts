import * as tf from '@tensorflow/tfjs-core';
import { assertShape } from '@vlm/core';

/** Options of {@link probeQueries}. */
export interface ProbeQueriesOptions {
  /**
   * Per attribute (e.g. `colour`, `shape`), the class index of every image (`N` integers in
   * `[0, classes)`). Each query gets one linear probe per attribute. Default: none (only the
   * similarities).
   */
  labels?: Record<string, readonly number[]>;
  /** Fraction of the images that train the probes; the rest measure them. Default: `0.5`. */
  trainFraction?: number;
  /** Optimisation steps of every probe (softmax regression, Adam, lr 0.05). Default: `150`. */
  steps?: number;
  /** L2 penalty on the probe weights. Default: `1e-3`. */
  l2?: number;
  /** Seed of the probes' initial weights. Default: `0`. */
  seed?: number;
}

/** One query's probe accuracies: `query` (its index) and, per labelled attribute, the held-out accuracy. */
export type QueryProbeAccuracy = {
  /** The query's index. */
  query: number;
} & Record<string, number>;

/** What {@link probeQueries} measures. */
export interface QueryProbe {
  /** `[Q][Q]`: the cosine similarity between queries `i` and `j`, averaged over images. */
  queryCosine: number[][];
  /** `[Q]`: each query's mean cosine similarity between its outputs for different images (1 = the query ignores the image). */
  acrossImages: number[];
  /** Per query, the held-out accuracy of a linear probe for each attribute in `labels`. */
  perQuery: QueryProbeAccuracy[];
  /** Held-out chance level per attribute (the most frequent class's share). */
  chance: Record<string, number>;
}

/**
 * The Q-Former probe of the design ("extract the 32 Q-Former output tokens for different
 * images; compute similarity between query tokens — do some queries specialise?"): given the
 * query outputs of `N` images `[N, Q, H]` (e.g. `Blip2.queryOutputs`), the cosine similarity
 * between queries (a `Q×Q` heatmap), how much each query's output changes across images, and
 * per-query linear probes (softmax regression on one query's output, trained on part of the
 * images, scored on the rest) for each labelled attribute.
 *
 * @example
 * ```ts
 * const probe = probeQueries(blip2.queryOutputs(visionTokens), { labels: { colour, shape } });
 * probe.perQuery[3].colour; // held-out accuracy of query 3's colour probe
 * ```
 */
export function probeQueries(queryOutputs: tf.Tensor, options: ProbeQueriesOptions = {}): QueryProbe {
  assertShape(queryOutputs, [null, null, null], 'probeQueries queryOutputs', ['images', 'queries', 'hidden']);
  const [n, q] = queryOutputs.shape as [number, number, number];
  if (n < 2) throw new Error(`probeQueries: expected at least 2 images, got ${n}`);
  const labels = options.labels ?? {};
  for (const [name, y] of Object.entries(labels)) {
    if (y.length !== n) throw new Error(`probeQueries: labels.${name}: expected ${n} labels (one per image), got ${y.length}`);
    if (y.some((v) => !Number.isInteger(v) || v < 0)) throw new Error(`probeQueries: labels.${name}: expected non-negative integer classes`);
  }
  const { queryCosine, acrossImages } = tf.tidy(() => {
    const unit = tf.div(queryOutputs, tf.add(tf.norm(queryOutputs, 'euclidean', -1, true), 1e-12)); // [N, Q, H]
    const byQuery = tf.matMul(unit, unit, false, true); // [N, Q, Q]
    const qc = tf.mean(byQuery, 0) as tf.Tensor2D;
    const perQuery = tf.transpose(unit, [1, 0, 2]); // [Q, N, H]
    const gram = tf.matMul(perQuery, perQuery, false, true); // [Q, N, N]
    const offDiagonal = tf.div(tf.sub(tf.sum(gram, [1, 2]), n), n * (n - 1)); // mean over i != j
    return { queryCosine: qc.arraySync(), acrossImages: Array.from(offDiagonal.dataSync()) };
  });

  const perQuery: QueryProbeAccuracy[] = Array.from({ length: q }, (_, i) => ({ query: i }) as QueryProbeAccuracy);
  const chance: Record<string, number> = {};
  const nTrain = Math.max(1, Math.min(n - 1, Math.round(n * (options.trainFraction ?? 0.5))));
  for (const [name, y] of Object.entries(labels)) {
    const classes = Math.max(...y) + 1;
    const test = y.slice(nTrain);
    const counts = new Array<number>(classes).fill(0);
    for (const v of test) counts[v]!++;
    chance[name] = Math.max(...counts) / test.length;
    const acc = trainProbes(queryOutputs, y, classes, nTrain, options);
    acc.forEach((a, i) => (perQuery[i]![name] = a));
  }
  return { queryCosine, acrossImages, perQuery, chance };
}

// One softmax-regression probe per query, all trained at once: X [Q, N, H] standardised, W [Q, H, C].
function trainProbes(x: tf.Tensor, y: readonly number[], classes: number, nTrain: number, options: ProbeQueriesOptions): number[] {
  const [n, q, h] = x.shape as [number, number, number];
  const steps = options.steps ?? 150;
  const l2 = options.l2 ?? 1e-3;
  const feats = tf.tidy(() => {
    const t = tf.transpose(x, [1, 0, 2]); // [Q, N, H]
    const train = tf.slice(t, [0, 0, 0], [q, nTrain, h]);
    const { mean, variance } = tf.moments(train, 1, true);
    return tf.div(tf.sub(t, mean), tf.sqrt(tf.add(variance, 1e-6))); // standardised with the training images' statistics
  });
  const trainX = tf.slice(feats, [0, 0, 0], [q, nTrain, h]);
  const testX = tf.slice(feats, [0, nTrain, 0], [q, n - nTrain, h]);
  const target = tf.tidy(() => tf.tile(tf.expandDims(tf.cast(tf.oneHot(tf.tensor1d(y.slice(0, nTrain), 'int32'), classes), 'float32'), 0), [q, 1, 1]));
  const [w, b] = tf.tidy(() => [tf.variable(tf.randomNormal([q, h, classes], 0, 0.01, 'float32', options.seed ?? 0)), tf.variable(tf.zeros([q, 1, classes]))]);
  const opt = tf.train.adam(0.05);
  try {
    for (let s = 0; s < steps; s++) {
      const cost = opt.minimize(() => {
        const logits = tf.add(tf.matMul(trainX, w), b); // [Q, nTrain, C]
        const ce = tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), -1)));
        return tf.add(tf.mul(ce, q), tf.mul(l2, tf.sum(tf.square(w)))) as tf.Scalar;
      }, true, [w, b]);
      cost?.dispose();
    }
    const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(testX, w), b), -1).arraySync() as number[][]); // [Q, nTest]
    const test = y.slice(nTrain);
    return predicted.map((row) => row.filter((c, i) => c === test[i]).length / test.length);
  } finally {
    opt.dispose();
    tf.dispose([feats, trainX, testX, target, w, b]);
  }
}
