import type { Example } from './datasets.ts';
import { LABELS, type Label } from './labels.ts';
import type { SentimentScorer } from './scorer.ts';

export interface EvalReport {
  dataset: string;
  backend: string;
  n: number;
  accuracy: number;
  macroF1: number;
  perClass: Record<Label, { precision: number; recall: number; f1: number; support: number }>;
  /** confusion[gold][predicted] */
  confusion: Record<Label, Record<Label, number>>;
  latencyMs: { median: number; p95: number };
  /** Items the backend failed on, answered by the baseline fallback (counted in the metrics as answered). */
  fallbacks: number;
}

/** Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix, from gold and predicted labels. */
export function metrics(
  gold: readonly Label[],
  pred: readonly Label[],
): Pick<EvalReport, 'accuracy' | 'macroF1' | 'perClass' | 'confusion' | 'n'> {
  const confusion = Object.fromEntries(
    LABELS.map((g) => [g, Object.fromEntries(LABELS.map((p) => [p, 0]))]),
  ) as EvalReport['confusion'];
  for (let i = 0; i < gold.length; i++) confusion[gold[i]!][pred[i]!]++;
  const n = gold.length;
  const correct = LABELS.reduce((s, l) => s + confusion[l][l], 0);
  const perClass = {} as EvalReport['perClass'];
  for (const l of LABELS) {
    const tp = confusion[l][l];
    const predicted = LABELS.reduce((s, g) => s + confusion[g][l], 0);
    const support = LABELS.reduce((s, p) => s + confusion[l][p], 0);
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    perClass[l] = {
      precision,
      recall,
      f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
      support,
    };
  }
  const macroF1 = LABELS.reduce((s, l) => s + perClass[l].f1, 0) / LABELS.length;
  return { n, accuracy: n === 0 ? 0 : correct / n, macroF1, perClass, confusion };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Scores every example through the scorer (no cache: every latency is a real call) and reports. */
export async function evaluate(
  dataset: string,
  examples: readonly Example[],
  scorer: SentimentScorer,
  opts: { onProgress?: (done: number, total: number) => void } = {},
): Promise<EvalReport> {
  const pred: Label[] = [];
  const lat: number[] = [];
  let fallbacks = 0;
  for (const e of examples) {
    const t0 = performance.now();
    let label: Label = 'neutral';
    try {
      const s = await scorer.score(e.text);
      label = s.label;
      if (s.fallback) fallbacks++;
    } catch {
      fallbacks++; // nothing to score (empty text): counted as a neutral answer
    }
    lat.push(performance.now() - t0);
    pred.push(label);
    opts.onProgress?.(pred.length, examples.length);
  }
  lat.sort((a, b) => a - b);
  return {
    dataset,
    backend: scorer.primary.name,
    ...metrics(
      examples.map((e) => e.label),
      pred,
    ),
    latencyMs: { median: quantile(lat, 0.5), p95: quantile(lat, 0.95) },
    fallbacks,
  };
}
