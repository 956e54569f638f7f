import type { Prediction } from '../../schemas/prediction.ts';
import type { Table } from '../../stores/table.ts';
import type { PredictionsStore } from '../predictions-store.ts';

/** The predictions store over the predictions table of either backend (see `rows.ts` and `src/stores/`). */
export class TablePredictionsStore implements PredictionsStore {
  readonly kind: 'duckdb' | 'postgres';
  private readonly table: Table<Prediction>;

  constructor(kind: 'duckdb' | 'postgres', table: Table<Prediction>) {
    this.kind = kind;
    this.table = table;
  }

  migrate(): Promise<void> {
    return this.table.migrate();
  }

  write(predictions: readonly Prediction[]): Promise<void> {
    return this.table.write(predictions);
  }

  history(
    pair: string,
    fromTs: number,
    toTs: number,
    opts: { limit?: number; after?: number; modelVersion?: number } = {},
  ): Promise<Prediction[]> {
    return this.table.page({
      series: pair,
      from: fromTs,
      to: toTs,
      limit: opts.limit,
      after: opts.after,
      where: opts.modelVersion === undefined ? undefined : { model_version: opts.modelVersion },
    });
  }

  range(pair: string, fromTs: number, toTs: number): Promise<Prediction[]> {
    return this.table.range(pair, fromTs, toTs);
  }

  columns(pair: string, fromTs: number, toTs: number, names: readonly string[]) {
    return this.table.columns(pair, fromTs, toTs, names);
  }

  latest(pair: string): Promise<Prediction | undefined> {
    return this.table.latest(pair);
  }

  count(): Promise<number> {
    return this.table.count();
  }

  close(): Promise<void> {
    return this.table.close();
  }
}
