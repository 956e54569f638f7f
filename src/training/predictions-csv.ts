/**
 * The columns of the `--predictions` CSV of `evaluate`, `train` and `backtest`, in one place so that the file and the
 * flag's help cannot drift apart (the help once listed five of the nine columns, and a `day` column that is `fold`).
 * In a backtest `fold` is the day index.
 */
export const PREDICTIONS_CSV_COLUMNS = [
  'pair',
  'windowEnd',
  'targetTs',
  'close',
  'predicted_close',
  'p10',
  'p90',
  'fold',
  'actual_close',
] as const;
