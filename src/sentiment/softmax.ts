/**
 * Multinomial logistic regression (softmax) with L2 regularisation, fitted by full-batch gradient descent on
 * standardised features. Small on purpose: a linear head over a language model's embedding, where a library
 * would bring far more than it solves.
 */
export interface SoftmaxModel {
  /** Per feature: mean and standard deviation used to standardise. */
  mean: number[];
  std: number[];
  /** weights[class][feature], bias[class]. */
  weights: number[][];
  bias: number[];
}

export function predictProba(m: SoftmaxModel, x: readonly number[]): number[] {
  const z = m.weights.map(
    (w, k) => m.bias[k]! + w.reduce((s, wj, j) => s + wj * ((x[j]! - m.mean[j]!) / m.std[j]!), 0),
  );
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export function fitSoftmax(
  xs: readonly (readonly number[])[],
  ys: readonly number[],
  classes: number,
  opts: { l2?: number; iterations?: number; learningRate?: number; balanced?: boolean } = {},
): SoftmaxModel {
  const n = xs.length;
  if (n === 0) throw new Error('fitSoftmax: no examples');
  const d = xs[0]!.length;
  const l2 = opts.l2 ?? 1e-3;
  const iterations = opts.iterations ?? 2_000;
  const lr = opts.learningRate ?? 0.5;
  const mean = Array.from({ length: d }, (_, j) => xs.reduce((s, x) => s + x[j]!, 0) / n);
  const std = Array.from({ length: d }, (_, j) => {
    const v = xs.reduce((s, x) => s + (x[j]! - mean[j]!) ** 2, 0) / n;
    return Math.sqrt(v) || 1;
  });
  const z = xs.map((x) => x.map((v, j) => (v - mean[j]!) / std[j]!));
  // Balanced class weights: each class counts as much in the loss, whatever its frequency in the training set.
  const counts = Array.from({ length: classes }, (_, k) => ys.filter((y) => y === k).length);
  const cw = counts.map((c) => (opts.balanced === false || c === 0 ? 1 : n / (classes * c)));
  const W = Array.from({ length: classes }, () => new Array<number>(d).fill(0));
  const b = new Array<number>(classes).fill(0);
  const m: SoftmaxModel = { mean: new Array(d).fill(0), std: new Array(d).fill(1), weights: W, bias: b };
  for (let it = 0; it < iterations; it++) {
    const gW = Array.from({ length: classes }, () => new Array<number>(d).fill(0));
    const gb = new Array<number>(classes).fill(0);
    let wsum = 0;
    for (let i = 0; i < n; i++) {
      const p = predictProba(m, z[i]!);
      const w = cw[ys[i]!]!;
      wsum += w;
      for (let k = 0; k < classes; k++) {
        const g = w * (p[k]! - (ys[i] === k ? 1 : 0));
        gb[k]! += g;
        for (let j = 0; j < d; j++) gW[k]![j]! += g * z[i]![j]!;
      }
    }
    for (let k = 0; k < classes; k++) {
      b[k]! -= (lr * gb[k]!) / wsum;
      for (let j = 0; j < d; j++) W[k]![j]! -= lr * (gW[k]![j]! / wsum + l2 * W[k]![j]!);
    }
  }
  return { mean, std, weights: W, bias: b };
}
