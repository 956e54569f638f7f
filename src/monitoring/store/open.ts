import type { PredictionError } from '../../schemas/prediction-error.ts';
import { type OpenTableOptions, openTable } from '../../stores/open.ts';
import type { Table } from '../../stores/table.ts';
import type { ErrorsStore } from './errors-store.ts';
import { ERRORS_SPEC } from './rows.ts';

/** The errors store over the error records table of either backend. */
class TableErrorsStore implements ErrorsStore {
  readonly kind: 'duckdb' | 'postgres';
  private readonly table: Table<PredictionError>;
  constructor(kind: 'duckdb' | 'postgres', table: Table<PredictionError>) {
    this.kind = kind;
    this.table = table;
  }
  write(records: readonly PredictionError[]): Promise<void> {
    return this.table.write(records);
  }
  history(
    pair: string,
    fromTs: number,
    toTs: number,
    opts: { limit?: number; after?: number; modelVersion?: number } = {},
  ): Promise<PredictionError[]> {
    return this.table.page({
      series: pair,
      from: fromTs,
      to: toTs,
      limit: opts.limit,
      after: opts.after,
      where: opts.modelVersion === undefined ? undefined : { model_version: opts.modelVersion },
    });
  }
  async byTargetTime(fromTs: number, toTs: number): Promise<PredictionError[]> {
    // Target time = windowEnd + horizon (≤ 1 day): scan the windowEnd range that can hold them, then filter.
    const rows = await this.table.scan(fromTs - 86_400_000, toTs);
    return rows.filter((e) => e.targetTs >= fromTs && e.targetTs < toTs);
  }
  range(pair: string, fromTs: number, toTs: number): Promise<PredictionError[]> {
    return this.table.range(pair, fromTs, toTs);
  }
  columns(pair: string, fromTs: number, toTs: number, names: readonly string[]) {
    return this.table.columns(pair, fromTs, toTs, names);
  }
  maxTargetTs(): Promise<number | undefined> {
    return this.table.max('target_ts');
  }
  pairs(): Promise<string[]> {
    return this.table.series();
  }
  count(): Promise<number> {
    return this.table.count();
  }
  close(): Promise<void> {
    return this.table.close();
  }
}

/** Opens the errors store by URL: `duckdb:PATH` (embedded, shares the file's database) or `postgres://…`. */
export async function openErrorsStore(url: string, o?: OpenTableOptions): Promise<ErrorsStore> {
  const table = await openTable(ERRORS_SPEC, url, o);
  return new TableErrorsStore(table.kind, table);
}
