import type pg from 'pg';
import { untilAvailable } from '../../core/dependency.ts';
import type { FeatureVectorRecord } from '../../schemas/feature.ts';
import { permanentPgError, pgConnectError, pgConnectionConfig } from '../../stores/pg-connection.ts';
import { inTransaction, pgPool } from '../../stores/pg-pool.ts';
import { copyColumns } from './postgres-copy.ts';
import {
  checkFeatureTable,
  type FeatureColumns,
  type FeatureSetDefinition,
  type FeatureStore,
  lastPerMinute,
  latestReadyPerPair,
  latestReadyRowPerPair,
  type OnlineVector,
  tableName,
  vectorFromRow,
} from './store.ts';

/** The feature tables' column types as information_schema names them (`checkFeatureTable`). */
const SQL_TYPE = { bigint: 'bigint', double: 'double precision', text: 'text', boolean: 'boolean' } as const;

/**
 * PostgreSQL feature store (distributed runtime). Bulk writes send columns as arrays and upsert with
 * `INSERT … SELECT FROM unnest(…) ON CONFLICT (pair, window_end) DO UPDATE` (idempotent, one round trip per chunk);
 * point-in-time reads are a LATERAL "latest windowEnd ≤ t" lookup on the primary key index. Doubles travel in
 * their shortest exact decimal form both ways, so values round-trip bit for bit.
 */
export class PostgresFeatureStore implements FeatureStore {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly migrated = new Set<string>();

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  /** `postgres://user[:password]@host:port/db` — put a password in the URL only from the environment. */
  /**
   * `giveUpAfterMs`: how long to wait for a database that does not answer (default: for ever, as a service does);
   * `signal` (the service's stop) ends the wait, and cuts a connection attempt short.
   */
  static async open(
    url: string,
    o: { giveUpAfterMs?: number; signal?: AbortSignal } = {},
  ): Promise<PostgresFeatureStore> {
    const connection = pgConnectionConfig(url);
    const pool = pgPool(connection, { signal: o.signal });
    const store = new PostgresFeatureStore(pool);
    // A database that is late or restarting is waited for (readiness says so), never a reason to exit.
    await untilAvailable(
      'postgresql',
      () =>
        pool.query(`CREATE TABLE IF NOT EXISTS feature_sets (
      name TEXT, version INTEGER, columns JSONB NOT NULL, source TEXT NOT NULL, created_at TIMESTAMPTZ DEFAULT now(),
      PRIMARY KEY (name, version))`),
      {
        permanent: (err) => permanentPgError(err, connection),
        giveUpAfterMs: o.giveUpAfterMs,
        signal: o.signal,
      },
    ).catch(async (err: unknown) => {
      await pool.end().catch(() => {});
      throw pgConnectError(err, connection);
    });
    return store;
  }

  async migrate(set: FeatureSetDefinition): Promise<void> {
    const t = tableName(set);
    if (this.migrated.has(t)) return;
    const cols = set.columns.map((c) => `"${c}" DOUBLE PRECISION`).join(', ');
    await this.pool.query(`CREATE TABLE IF NOT EXISTS ${t} (
      pair TEXT NOT NULL, window_end BIGINT NOT NULL, window_start BIGINT NOT NULL, exchange TEXT NOT NULL,
      close DOUBLE PRECISION NOT NULL, ready BOOLEAN NOT NULL, ${cols}, PRIMARY KEY (pair, window_end))`);
    // A table there of another layout (other columns, or types) is refused before anything is made beside it.
    const r = await this.pool.query(
      `SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`,
      [t],
    );
    checkFeatureTable(set, r.rows as { name: string; type: string }[], SQL_TYPE);
    await this.pool.query(`CREATE TABLE IF NOT EXISTS ${t}_online (LIKE ${t} INCLUDING ALL)`);
    await this.pool.query(`CREATE UNIQUE INDEX IF NOT EXISTS ${t}_online_pair ON ${t}_online (pair)`);
    await this.pool.query(
      `INSERT INTO feature_sets (name, version, columns, source) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [set.name, set.version, JSON.stringify(set.columns), set.source],
    );
    this.migrated.add(t);
  }

  async write(set: FeatureSetDefinition, batch: readonly FeatureVectorRecord[]): Promise<void> {
    if (batch.length === 0) return;
    const vectors = lastPerMinute(batch);
    await this.migrate(set);
    const t = tableName(set);
    const { names, unnest, update } = unnestUpsert(set);
    await inTransaction(this.pool, async (client) => {
      for (let i = 0; i < vectors.length; i += 20_000) {
        const chunk = vectors.slice(i, i + 20_000);
        const params: unknown[][] = [
          chunk.map((v) => v.pair),
          chunk.map((v) => String(v.windowEnd)),
          chunk.map((v) => String(v.windowStart)),
          chunk.map((v) => v.exchange),
          chunk.map((v) => v.close),
          chunk.map((v) => v.ready),
          ...set.columns.map((_, k) => chunk.map((v) => v.values[k] ?? null)),
        ];
        await client.query(
          `INSERT INTO ${t} (${names.join(', ')}) ${unnest} ON CONFLICT (pair, window_end) DO UPDATE SET ${update} ${keepReady(t)}`,
          params,
        );
      }
      await this.upsertOnline(client, set, latestReadyPerPair(vectors));
    });
  }

  /** Each pair's latest ready vector of a write, into the online table unless that holds a newer one. */
  private async upsertOnline(
    client: pg.PoolClient,
    set: FeatureSetDefinition,
    latest: readonly FeatureVectorRecord[],
  ): Promise<void> {
    if (latest.length === 0) return;
    const t = tableName(set);
    const { names, unnest, update } = unnestUpsert(set);
    const params: unknown[][] = [
      latest.map((v) => v.pair),
      latest.map((v) => String(v.windowEnd)),
      latest.map((v) => String(v.windowStart)),
      latest.map((v) => v.exchange),
      latest.map((v) => v.close),
      latest.map((v) => v.ready),
      ...set.columns.map((_, k) => latest.map((v) => v.values[k] ?? null)),
    ];
    await client.query(
      `INSERT INTO ${t}_online (${names.join(', ')}) ${unnest}
       ON CONFLICT (pair) DO UPDATE SET window_end = EXCLUDED.window_end, ${update}
       WHERE ${t}_online.window_end <= EXCLUDED.window_end`,
      params,
    );
  }

  /**
   * Column batches by binary COPY: straight into the table when every row is newer than what it holds for its pair
   * (a backfill), otherwise into a temporary table and upserted from there. Online as `write`.
   */
  async writeColumns(set: FeatureSetDefinition, rows: FeatureColumns): Promise<void> {
    if (rows.length === 0) return;
    await this.migrate(set);
    const t = tableName(set);
    const names = [
      'pair',
      'window_end',
      'window_start',
      'exchange',
      'close',
      'ready',
      ...set.columns.map((c) => `"${c}"`),
    ];
    const update = names
      .slice(2)
      .map((n) => `${n} = EXCLUDED.${n}`)
      .join(', ');
    await inTransaction(this.pool, async (client) => {
      const pairs = [...new Set(rows.pair.slice(0, rows.length))];
      const r = await client.query(
        `SELECT pair, max(window_end) AS w FROM ${t} WHERE pair = ANY($1::text[]) GROUP BY pair`,
        [pairs],
      );
      const last = new Map(r.rows.map((x) => [String(x.pair), Number(x.w)]));
      const seen = new Map<string, number>();
      let fresh = true;
      for (let i = 0; i < rows.length && fresh; i++) {
        const floor = seen.get(rows.pair[i]!) ?? last.get(rows.pair[i]!) ?? Number.NEGATIVE_INFINITY;
        if (rows.windowEnd[i]! <= floor) fresh = false;
        seen.set(rows.pair[i]!, rows.windowEnd[i]!);
      }
      if (fresh) await copyColumns(client, t, names, rows);
      else {
        await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${t}_copy (LIKE ${t}) ON COMMIT DELETE ROWS`);
        await copyColumns(client, `${t}_copy`, names, rows);
        await client.query(
          `INSERT INTO ${t} (${names.join(', ')}) SELECT ${names.join(', ')} FROM ${t}_copy
           ON CONFLICT (pair, window_end) DO UPDATE SET ${update} ${keepReady(t)}`,
        );
      }
      await this.upsertOnline(client, set, latestReadyRowPerPair(set, rows));
    });
  }

  async asOf(set: FeatureSetDefinition, pair: string, ts: number): Promise<FeatureVectorRecord | undefined> {
    return (await this.asOfMany(set, pair, [ts]))[0];
  }

  async asOfMany(
    set: FeatureSetDefinition,
    pair: string,
    ts: readonly number[],
  ): Promise<(FeatureVectorRecord | undefined)[]> {
    await this.migrate(set);
    if (ts.length === 0) return [];
    const r = await this.pool.query(
      `SELECT p.i, f.* FROM unnest($2::bigint[]) WITH ORDINALITY AS p(ts, i)
       LEFT JOIN LATERAL (SELECT * FROM ${tableName(set)} WHERE pair = $1 AND window_end <= p.ts ORDER BY window_end DESC LIMIT 1) f ON true
       ORDER BY p.i`,
      [pair, ts.map(String)],
    );
    return r.rows.map((row) => (row.pair === null ? undefined : vectorFromRow(set, row)));
  }

  async history(
    set: FeatureSetDefinition,
    pair: string,
    fromTs: number,
    toTs: number,
  ): Promise<FeatureVectorRecord[]> {
    await this.migrate(set);
    const r = await this.pool.query(
      `SELECT * FROM ${tableName(set)} WHERE pair = $1 AND window_end >= $2 AND window_end < $3 ORDER BY window_end`,
      [pair, String(fromTs), String(toTs)],
    );
    return r.rows.map((row) => vectorFromRow(set, row));
  }

  async online(set: FeatureSetDefinition, pair: string, now = Date.now()): Promise<OnlineVector | undefined> {
    await this.migrate(set);
    const t = tableName(set);
    const r = await this.pool.query(`SELECT * FROM ${t}_online WHERE pair = $1`, [pair]);
    let row = r.rows[0];
    if (row === undefined) return undefined;
    if (Number(row.window_end) > now) {
      // The online row is from after `now` (asked about the past): the latest ready vector known at `now`.
      const past = await this.pool.query(
        `SELECT * FROM ${t} WHERE pair = $1 AND ready AND window_end <= $2 ORDER BY window_end DESC LIMIT 1`,
        [pair, String(now)],
      );
      row = past.rows[0];
      if (row === undefined) return undefined;
    }
    const vector = vectorFromRow(set, row);
    return { vector, ageMs: now - vector.windowEnd };
  }

  async latest(set: FeatureSetDefinition): Promise<Map<string, number>> {
    await this.migrate(set);
    const r = await this.pool.query(`SELECT pair, max(window_end) AS w FROM ${tableName(set)} GROUP BY pair`);
    return new Map(r.rows.map((x) => [String(x.pair), Number(x.w)]));
  }

  async count(set: FeatureSetDefinition): Promise<number> {
    await this.migrate(set);
    const r = await this.pool.query(`SELECT count(*) AS n FROM ${tableName(set)}`);
    return Number(r.rows[0].n);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * The parts of an upsert of feature rows sent as one array per column (`unnest`): the column names, the SELECT that
 * turns the arrays into rows, and the SET clause that replaces every value but the key (pair, window_end).
 */
function unnestUpsert(set: FeatureSetDefinition): { names: string[]; unnest: string; update: string } {
  const names = [
    'pair',
    'window_end',
    'window_start',
    'exchange',
    'close',
    'ready',
    ...set.columns.map((c) => `"${c}"`),
  ];
  const types = [
    'text[]',
    'bigint[]',
    'bigint[]',
    'text[]',
    'float8[]',
    'bool[]',
    ...set.columns.map(() => 'float8[]'),
  ];
  const unnest = `SELECT * FROM unnest(${types.map((ty, i) => `$${i + 1}::${ty}`).join(', ')})`;
  const update = names
    .slice(2)
    .map((n) => `${n} = EXCLUDED.${n}`)
    .join(', ');
  return { names, unnest, update };
}

/**
 * The upsert's condition: a stored ready row is not replaced by a not-ready one. A backfill re-run over the later part
 * of a stored range starts with a warm-up, and its first vectors replaced the ready ones the full run had stored.
 */
const keepReady = (table: string) => `WHERE EXCLUDED.ready OR NOT ${table}.ready`;
