/**
 * Values a model never saw missing, filled with their training mean when they are missing at serving time.
 *
 * Why: XGBoost routes a missing value down each split's default branch, which it learns from the training rows that
 * lacked the value. A column that was never missing in training (`trades_z_60m` on Binance, which always counts its
 * trades) has default branches learnt from nothing, so a venue without that value (Bitstamp's candles have no trade
 * count) sends every row down arbitrary branches. Its training mean is the neutral value the trees did see (for a
 * z-score, "ordinary activity"). Columns that were missing in training keep XGBoost's own handling, and so does a card
 * without `columnStats` (trained before they were recorded): behaviour unchanged.
 *
 * Pure: `plan` reads the card once, `fillRow` / `fillMatrix` apply it; both count what they filled per column.
 */
export interface ImputationPlan {
  /** Per model input: the value to fill in when missing, or NaN (leave it missing). */
  readonly fill: Float64Array;
  /** Per model input: its column's name. */
  readonly inputs: readonly string[];
  /** The input columns that are filled (empty: nothing to do). */
  readonly columns: readonly string[];
}

/** Per input column of a card's training rows: mean of the present values (null if none), share of rows missing. */
export type ColumnStats = Record<string, { mean: number | null; missing: number }>;

export function imputationPlan(card: {
  columns: readonly string[];
  columnStats?: ColumnStats;
}): ImputationPlan {
  const fill = new Float64Array(card.columns.length).fill(Number.NaN);
  const columns: string[] = [];
  card.columns.forEach((c, j) => {
    const s = card.columnStats?.[c];
    if (s !== undefined && s.missing === 0 && s.mean !== null && Number.isFinite(s.mean)) {
      fill[j] = s.mean;
      columns.push(c);
    }
  });
  return { fill, inputs: card.columns, columns };
}

/**
 * Fills the missing values of one model input row in place, counting each fill in `counts` (per input); returns how
 * many it filled.
 */
export function fillRow(plan: ImputationPlan, row: Float32Array, counts: Int32Array): number {
  if (plan.columns.length === 0) return 0;
  let filled = 0;
  for (let j = 0; j < row.length; j++) {
    if (Number.isNaN(row[j]!) && !Number.isNaN(plan.fill[j]!)) {
      row[j] = plan.fill[j]!;
      counts[j]!++;
      filled++;
    }
  }
  return filled;
}

/**
 * The n × k row-major matrix `X` with its missing values filled (a copy when anything is filled, else `X` itself),
 * and how many rows were filled per column (only columns with any).
 */
export function fillMatrix(
  plan: ImputationPlan,
  X: Float32Array,
  n: number,
): { X: Float32Array; filled: Record<string, number> } {
  const k = plan.fill.length;
  const filled: Record<string, number> = {};
  let out = X;
  for (let j = 0; j < k; j++) {
    const v = plan.fill[j]!;
    if (Number.isNaN(v)) continue;
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (!Number.isNaN(out[i * k + j]!)) continue;
      if (out === X) out = X.slice();
      out[i * k + j] = v;
      count++;
    }
    if (count > 0) filled[plan.inputs[j]!] = count;
  }
  return { X: out, filled };
}

/** The card's `columnStats` of the rows a model is trained on (n × columns, row-major, NaN = missing). */
export function columnStats(columns: readonly string[], X: Float32Array, n: number): ColumnStats {
  const k = columns.length;
  const out: ColumnStats = {};
  for (let j = 0; j < k; j++) {
    let sum = 0;
    let present = 0;
    for (let i = 0; i < n; i++) {
      const v = X[i * k + j]!;
      if (Number.isNaN(v)) continue;
      sum += v;
      present++;
    }
    out[columns[j]!] = { mean: present > 0 ? sum / present : null, missing: n > 0 ? (n - present) / n : 0 };
  }
  return out;
}
