import pg from 'pg';
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
 * PostgreSQL predictions store (distributed runtime). Writes send columns as arrays and upsert with
 * `INSERT … SELECT FROM unnest(…) ON CONFLICT (pair, window_end, model_version) DO UPDATE` (idempotent, one round
 * trip per chunk). BIGINTs travel as strings, doubles in their shortest exact decimal form.
 */
export class PostgresPredictionsStore implements PredictionsStore {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private migrated = false;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  /** `postgres://user[:password]@host:port/db` — put a password in the URL only from the environment. */
  static async open(url: string): Promise<PostgresPredictionsStore> {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => {}); // idle client errors surface on the next query instead
    const store = new PostgresPredictionsStore(pool);
    await store.migrate();
    return store;
  }

  async migrate(): Promise<void> {
    if (this.migrated) return;
    const cols = PREDICTION_COLUMNS.map(
      ([c]) =>
        `${c} ${BIGINT_COLUMNS.has(c) ? 'BIGINT' : TEXT_COLUMNS.has(c) ? 'TEXT' : 'DOUBLE PRECISION'} NOT NULL`,
    ).join(', ');
    await this.pool.query(
      `CREATE TABLE IF NOT EXISTS ${T} (${cols}, PRIMARY KEY (pair, window_end, model_version))`,
    );
    this.migrated = true;
  }

  async write(predictions: readonly Prediction[]): Promise<void> {
    if (predictions.length === 0) return;
    await this.migrate();
    const names = PREDICTION_COLUMNS.map(([c]) => c);
    const types = names.map((c) =>
      BIGINT_COLUMNS.has(c) ? 'bigint[]' : TEXT_COLUMNS.has(c) ? 'text[]' : 'float8[]',
    );
    const unnest = `SELECT * FROM unnest(${types.map((ty, i) => `$${i + 1}::${ty}`).join(', ')})`;
    const update = names
      .slice(3)
      .map((n) => `${n} = EXCLUDED.${n}`)
      .join(', ');
    const rows = dedupe(predictions);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      for (let i = 0; i < rows.length; i += 10_000) {
        const chunk = rows.slice(i, i + 10_000);
        const params = PREDICTION_COLUMNS.map(([c, get]) =>
          chunk.map((p) => (BIGINT_COLUMNS.has(c) ? String(get(p)) : get(p))),
        );
        await client.query(
          `INSERT INTO ${T} (${names.join(', ')}) ${unnest}
           ON CONFLICT (pair, window_end, model_version) DO UPDATE SET ${update}`,
          params,
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async history(
    pair: string,
    fromTs: number,
    toTs: number,
    opts: { limit?: number; after?: number; modelVersion?: number } = {},
  ): Promise<Prediction[]> {
    const limit = pageLimit(opts.limit);
    await this.migrate();
    const where = ['pair = $1', 'window_end >= $2', 'window_end < $3'];
    const params: unknown[] = [pair, String(fromTs), String(toTs)];
    if (opts.after !== undefined) {
      params.push(String(opts.after));
      where.push(`window_end > $${params.length}`);
    }
    if (opts.modelVersion !== undefined) {
      params.push(String(opts.modelVersion));
      where.push(`model_version = $${params.length}`);
    }
    const sql = `SELECT * FROM ${T} WHERE ${where.join(' AND ')}`;
    const r = await this.pool.query(`${sql} ORDER BY window_end, model_version LIMIT ${limit + 1}`, params);
    return trimPage(r.rows.map(predictionFromRow), limit, async (windowEnd) => {
      const g = await this.pool.query(
        `${sql} AND window_end = $${params.length + 1} ORDER BY model_version`,
        [...params, String(windowEnd)],
      );
      return g.rows.map(predictionFromRow);
    });
  }

  async latest(pair: string): Promise<Prediction | undefined> {
    await this.migrate();
    const r = await this.pool.query(
      `SELECT * FROM ${T} WHERE pair = $1 ORDER BY window_end DESC, model_version DESC LIMIT 1`,
      [pair],
    );
    return r.rows.length === 0 ? undefined : predictionFromRow(r.rows[0]);
  }

  async count(): Promise<number> {
    await this.migrate();
    const r = await this.pool.query(`SELECT count(*) AS n FROM ${T}`);
    return Number(r.rows[0].n);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
