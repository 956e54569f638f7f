import { type OpenTableOptions, openTable } from '../../stores/open.ts';
import type { PredictionsStore } from '../predictions-store.ts';
import { PREDICTIONS_SPEC } from './rows.ts';
import { TablePredictionsStore } from './table-store.ts';

/**
 * Opens a predictions store by URL, the same URLs as the feature store: `duckdb:PATH` (embedded, one file) or
 * `postgres://user@host:port/db` (distributed).
 *
 * The default shares the feature store's DuckDB file. That is fine inside one process (`cryptocast run`: the
 * feature writer and the predictor open the file side by side), but DuckDB lets only one process open a file for
 * writing: a predictor started as its own process (`cryptocast service predictor`) while another process holds
 * the file fails to open it. Give it its own file (`duckdb:.data/predictions.duckdb`) or use PostgreSQL there.
 */
export async function openPredictionsStore(url: string, o?: OpenTableOptions): Promise<PredictionsStore> {
  const table = await openTable(PREDICTIONS_SPEC, url, o);
  return new TablePredictionsStore(table.kind, table);
}

export const DEFAULT_PREDICTIONS_STORE = 'duckdb:.data/cryptocast.duckdb';
