/**
 * A closed-form linear probe: ridge regression onto one-hot targets, on standardised features,
 * with λ chosen on an inner 75/25 split of the training rows (the method of the encoder probe
 * notes). Primal form when features ≤ rows, dual (Gram) form otherwise; float64 throughout.
 */

/** Solves `A x = b` for symmetric positive-definite `A` (n×n, row-major), for every column of `b` (n×m). */
function choleskySolve(a: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / l[j * n + j]!;
    }
  }
  const x = new Float64Array(n * m);
  for (let c = 0; c < m; c++) {
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = b[i * m + c]!;
      for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!;
      y[i] = s / l[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = y[i]!;
      for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k * m + c]!;
      x[i * m + c] = s / l[i * n + i]!;
    }
  }
  return x;
}

interface Fitted {
  predict(rows: Float64Array[]): number[];
}

function fit(x: Float64Array[], y: number[], classes: number, lambda: number): Fitted {
  const n = x.length;
  const d = x[0]!.length;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const r of x) for (let j = 0; j < d; j++) mean[j]! += r[j]! / n;
  for (const r of x) for (let j = 0; j < d; j++) std[j]! += (r[j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) + 1e-6;
  const z = x.map((r) => r.map((v, j) => (v - mean[j]!) / std[j]!));
  const ymean = new Float64Array(classes);
  for (const c of y) ymean[c]! += 1 / n;
  const yc = new Float64Array(n * classes);
  y.forEach((c, i) => {
    for (let k = 0; k < classes; k++) yc[i * classes + k] = (k === c ? 1 : 0) - ymean[k]!;
  });
  let w: Float64Array; // d × classes
  if (d <= n) {
    const a = new Float64Array(d * d);
    const b = new Float64Array(d * classes);
    for (let i = 0; i < n; i++) {
      const r = z[i]!;
      for (let p = 0; p < d; p++) {
        const rp = r[p]!;
        if (rp === 0) continue;
        for (let q = 0; q <= p; q++) a[p * d + q]! += rp * r[q]!;
        for (let k = 0; k < classes; k++) b[p * classes + k]! += rp * yc[i * classes + k]!;
      }
    }
    for (let p = 0; p < d; p++) {
      for (let q = 0; q < p; q++) a[q * d + p] = a[p * d + q]!;
      a[p * d + p]! += lambda;
    }
    w = choleskySolve(a, d, b, classes);
  } else {
    const g = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        const ri = z[i]!;
        const rj = z[j]!;
        for (let p = 0; p < d; p++) s += ri[p]! * rj[p]!;
        g[i * n + j] = s;
        g[j * n + i] = s;
      }
      g[i * n + i]! += lambda;
    }
    const alpha = choleskySolve(g, n, yc, classes);
    w = new Float64Array(d * classes);
    for (let i = 0; i < n; i++) for (let p = 0; p < d; p++) for (let k = 0; k < classes; k++) w[p * classes + k]! += z[i]![p]! * alpha[i * classes + k]!;
  }
  return {
    predict: (rows) =>
      rows.map((r) => {
        let best = 0;
        let bestScore = -Infinity;
        for (let k = 0; k < classes; k++) {
          let s = ymean[k]!;
          for (let p = 0; p < d; p++) s += ((r[p]! - mean[p]!) / std[p]!) * w[p * classes + k]!;
          if (s > bestScore) {
            bestScore = s;
            best = k;
          }
        }
        return best;
      }),
  };
}

const accuracy = (pred: number[], y: number[]) => pred.filter((p, i) => p === y[i]).length / y.length;

/** Result of {@link linearProbe}. */
export interface ProbeResult {
  /** Test accuracy. */
  accuracy: number;
  /** Accuracy of always answering the most frequent training class. */
  chance: number;
  /** Test rows. */
  testRows: number;
  /** The λ chosen on the inner split. */
  lambda: number;
}

/**
 * Fits a linear probe on `train` and measures it on `test`; λ from {1e-1 … 1e5} on an inner
 * 75/25 split of `train`.
 */
export function linearProbe(train: { x: Float64Array[]; y: number[] }, test: { x: Float64Array[]; y: number[] }, classes: number): ProbeResult {
  const cut = Math.floor(train.x.length * 0.75);
  let lambda = 1;
  let best = -1;
  for (const l of [1e-1, 1, 10, 100, 1e3, 1e4, 1e5]) {
    const m = fit(train.x.slice(0, cut), train.y.slice(0, cut), classes, l);
    const a = accuracy(m.predict(train.x.slice(cut)), train.y.slice(cut));
    if (a > best) {
      best = a;
      lambda = l;
    }
  }
  const m = fit(train.x, train.y, classes, lambda);
  const counts = new Array<number>(classes).fill(0);
  for (const c of train.y) counts[c]!++;
  const major = counts.indexOf(Math.max(...counts));
  return {
    accuracy: accuracy(m.predict(test.x), test.y),
    chance: test.y.filter((c) => c === major).length / test.y.length,
    testRows: test.y.length,
    lambda,
  };
}
