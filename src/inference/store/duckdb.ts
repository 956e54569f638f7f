import { type DuckDBConnection, DuckDBDataChunkWriter, type DuckDBValue } from '@duckdb/node-api';
import { type DuckDbSession, openDuckDb } from '../../core/duckdb.ts';
import type { Prediction } from '../../schemas/prediction.ts';
import type { PredictionsStore } from '../predictions-store.ts';
import {
  BIGINT_COLUMNS,
  dedupe,
  PREDICTION_COLUMNS,
  PREDICTIONS_TABLE,
  pageLimit,
  predictionFromRow,
  TEXT_COLUMNS,
  trimPage,
} from './rows.ts';

const T = PREDICTIONS_TABLE;

/**
 * DuckDB predictions store (embedded default). It may live in the feature store's file (`duckdb:.data/cryptocast.duckdb`):
 * the tables do not collide, and within one process (`cryptocast run`) both stores share one database instance
 * (`openDuckDb`). DuckDB allows one writer *process* per file, though: a predictor running as its own process
 * (`cryptocast service predictor`) next to a feature-writer process needs its own file (or PostgreSQL).
 *
 * Writes go through DuckDB's appender into a staging table, then `INSERT OR REPLACE` (primary key pair, window_end,
 * model_version: idempotent) in one transaction.
 */
export class DuckDbPredictionsStore implements PredictionsStore {
  readonly kind = 'duckdb' as const;
  private readonly conn: DuckDBConnection;
  private readonly session: DuckDbSession;
  private migrated = false;

  /** One connection, one statement sequence at a time: calls are queued. */
  private serial<U>(fn: () => Promise<U>): Promise<U> {
    return this.session.serial(fn);
  }

  private constructor(session: DuckDbSession) {
    this.session = session;
    this.conn = session.conn;
  }

  /** `path` is a file (created if missing) or `:memory:`. */
  static async open(path: string): Promise<DuckDbPredictionsStore> {
    const store = new DuckDbPredictionsStore(await openDuckDb(path));
    await store.migrate();
    return store;
  }

  migrate(): Promise<void> {
    return this.serial(() => this._migrate());
  }

  private async _migrate(): Promise<void> {
    if (this.migrated) return;
    const cols = PREDICTION_COLUMNS.map(
      ([c]) =>
        `${c} ${BIGINT_COLUMNS.has(c) ? 'BIGINT' : TEXT_COLUMNS.has(c) ? 'VARCHAR' : 'DOUBLE'} NOT NULL`,
    ).join(', ');
    await this.conn.run(
      `CREATE TABLE IF NOT EXISTS ${T} (${cols}, PRIMARY KEY (pair, window_end, model_version))`,
    );
    await this.conn.run(`CREATE TEMP TABLE IF NOT EXISTS ${T}_staging AS SELECT * FROM ${T} WITH NO DATA`);
    this.migrated = true;
  }

  write(predictions: readonly Prediction[]): Promise<void> {
    return this.serial(() => this._write(predictions));
  }

  private async _write(predictions: readonly Prediction[]): Promise<void> {
    if (predictions.length === 0) return;
    await this._migrate();
    const app = await this.conn.createAppender(`${T}_staging`, 'main', 'temp');
    const writer = DuckDBDataChunkWriter.forAppender(app);
    for (const p of dedupe(predictions)) {
      writer.appendRow(
        PREDICTION_COLUMNS.map(([c, get]) => (BIGINT_COLUMNS.has(c) ? BigInt(get(p)) : get(p))),
      );
    }
    writer.flush();
    app.closeSync();
    await this.conn.run('BEGIN TRANSACTION');
    try {
      await this.conn.run(`INSERT OR REPLACE INTO ${T} SELECT * FROM ${T}_staging`);
      await this.conn.run(`DELETE FROM ${T}_staging`);
      await this.conn.run('COMMIT');
    } catch (err) {
      await this.conn.run('ROLLBACK');
      await this.conn.run(`DELETE FROM ${T}_staging`);
      throw err;
    }
  }

  async history(
    pair: string,
    fromTs: number,
    toTs: number,
    opts: { limit?: number; after?: number; modelVersion?: number } = {},
  ): Promise<Prediction[]> {
    const limit = pageLimit(opts.limit);
    return this.serial(async () => {
      await this._migrate();
      const where = [`pair = $1`, `window_end >= $2`, `window_end < $3`];
      const params: DuckDBValue[] = [pair, BigInt(fromTs), BigInt(toTs)];
      if (opts.after !== undefined) {
        params.push(BigInt(opts.after));
        where.push(`window_end > $${params.length}`);
      }
      if (opts.modelVersion !== undefined) {
        params.push(BigInt(opts.modelVersion));
        where.push(`model_version = $${params.length}`);
      }
      const sql = `SELECT * FROM ${T} WHERE ${where.join(' AND ')} ORDER BY window_end, model_version`;
      const r = await this.conn.runAndReadAll(`${sql} LIMIT ${limit + 1}`, params);
      const rows = r.getRowObjects().map(predictionFromRow);
      return trimPage(rows, limit, async (windowEnd) => {
        const g = await this.conn.runAndReadAll(
          `SELECT * FROM ${T} WHERE ${where.join(' AND ')} AND window_end = ${BigInt(windowEnd)} ORDER BY model_version`,
          params,
        );
        return g.getRowObjects().map(predictionFromRow);
      });
    });
  }

  latest(pair: string): Promise<Prediction | undefined> {
    return this.serial(async () => {
      await this._migrate();
      const r = await this.conn.runAndReadAll(
        `SELECT * FROM ${T} WHERE pair = $1 ORDER BY window_end DESC, model_version DESC LIMIT 1`,
        [pair],
      );
      const row = r.getRowObjects()[0];
      return row === undefined ? undefined : predictionFromRow(row);
    });
  }

  count(): Promise<number> {
    return this.serial(async () => {
      await this._migrate();
      const r = await this.conn.runAndReadAll(`SELECT count(*) AS n FROM ${T}`);
      return Number(r.getRowObjects()[0]!.n);
    });
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}
