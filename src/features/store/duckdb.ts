import type { DuckDBConnection } from '@duckdb/node-api';
import { appendRows, type DuckDbSession, inTransaction, openDuckDb } from '../../core/duckdb.ts';
import type { FeatureVectorRecord } from '../../schemas/feature.ts';
import { DuckDbColumnSource } from './duckdb-columns.ts';
import { DuckDbOverlappingInserts } from './duckdb-overlapping.ts';
import { duckDbThreads, moveOnlineForward, upsertStaged } from './duckdb-statements.ts';
import {
  type BulkWrite,
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
const SQL_TYPE = { bigint: 'BIGINT', double: 'DOUBLE', text: 'VARCHAR', boolean: 'BOOLEAN' } as const;

/**
 * DuckDB feature store (embedded default): one file, shared with the other stores of the process (`openDuckDb`).
 * Bulk writes go through DuckDB's appender into a staging
 * table, then `INSERT OR REPLACE` into the history (primary key pair + window_end: idempotent; a ready row is kept over a
 * not-ready one: `upsertStaged`). Point-in-time
 * reads use DuckDB's ASOF JOIN.
 */
export class DuckDbFeatureStore implements FeatureStore {
  readonly kind = 'duckdb' as const;
  /**
   * A backfill's batches: one DuckDB row group each (122,880 rows, its default), written while the next ones are
   * computed (src/features/backfill.ts): in a file two at a time (`DuckDbOverlappingInserts`), in memory one (a
   * single connection). Whole row groups: batches that end inside one cost more at the checkpoint (a year of minutes
   * in batches of 61,440 rows took 4.8–5.3 s against 3.6–4.0 s); for the same reason the last batch takes the rest.
   */
  readonly bulk: BulkWrite;
  /** A file's extra connections for a backfill's batches, opened at its first batch. */
  private overlapping: DuckDbOverlappingInserts | undefined;
  private readonly conn: DuckDBConnection;
  private readonly session: DuckDbSession;
  private readonly migrated = new Set<string>();

  /**
   * One connection, one statement sequence at a time: calls are queued (services write concurrently). They also
   * wait for a backfill's batches still committing on the other connections (`writeColumns`).
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.session.serial(async () => {
      await this.overlapping?.settled;
      return fn();
    });
  }

  private constructor(session: DuckDbSession) {
    this.session = session;
    this.conn = session.conn;
    this.bulk = { rows: 122_880, inFlight: session.path === ':memory:' ? 1 : 2, mergeTail: true };
  }

  /** `path` is a file (created if missing) or `:memory:`. */
  static async open(path: string): Promise<DuckDbFeatureStore> {
    const session = await openDuckDb(path);
    const store = new DuckDbFeatureStore(session);
    const conn = session.conn;
    await conn.run(`CREATE TABLE IF NOT EXISTS feature_sets (
      name VARCHAR, version INTEGER, columns VARCHAR, source VARCHAR, created_at TIMESTAMP DEFAULT now(),
      PRIMARY KEY (name, version))`);
    return store;
  }

  async migrate(set: FeatureSetDefinition): Promise<void> {
    return this.serial(() => this._migrate(set));
  }

  private async _migrate(set: FeatureSetDefinition): Promise<void> {
    const t = tableName(set);
    if (this.migrated.has(t)) return;
    const cols = set.columns.map((c) => `"${c}" DOUBLE`).join(', ');
    await this.conn.run(`CREATE TABLE IF NOT EXISTS ${t} (
      pair VARCHAR NOT NULL, window_end BIGINT NOT NULL, window_start BIGINT NOT NULL, exchange VARCHAR NOT NULL,
      close DOUBLE NOT NULL, ready BOOLEAN NOT NULL, ${cols}, PRIMARY KEY (pair, window_end))`);
    // A table there of another layout (other columns, or types) is refused before anything is made beside it.
    const existing = await this.conn.runAndReadAll(
      `SELECT column_name AS name, data_type AS type FROM information_schema.columns
       WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = $1 ORDER BY ordinal_position`,
      [t],
    );
    checkFeatureTable(
      set,
      existing.getRowObjects().map((r) => ({ name: String(r.name), type: String(r.type) })),
      SQL_TYPE,
    );
    await this.conn.run(`CREATE TABLE IF NOT EXISTS ${t}_online AS SELECT * FROM ${t} WITH NO DATA`);
    await this.conn.run(`CREATE UNIQUE INDEX IF NOT EXISTS ${t}_online_pair ON ${t}_online (pair)`);
    await this.conn.run(`CREATE TEMP TABLE IF NOT EXISTS ${t}_staging AS SELECT * FROM ${t} WITH NO DATA`);
    await this.conn.run(
      `INSERT OR IGNORE INTO feature_sets (name, version, columns, source) VALUES ($1, $2, $3, $4)`,
      [set.name, set.version, JSON.stringify(set.columns), set.source],
    );
    this.migrated.add(t);
  }

  async write(set: FeatureSetDefinition, vectors: readonly FeatureVectorRecord[]): Promise<void> {
    return this.serial(() => this._write(set, vectors));
  }

  private async _write(set: FeatureSetDefinition, batch: readonly FeatureVectorRecord[]): Promise<void> {
    if (batch.length === 0) return;
    const vectors = lastPerMinute(batch);
    await this._migrate(set);
    const t = tableName(set);
    // Fast path (a backfill or the live writer: every row is newer than what the table holds for its pair):
    // append straight into the table. Otherwise stage and upsert.
    const fresh = await this.allNewer(t, vectors);
    // The appender inside the transaction: on its own it commits what it appends when closed, so a failure after it
    // (the online row's update on a disk that just filled) left the rows stored while the write was reported failed
    // (`cryptocast run` then reported fewer rows than the file held) and the online row behind them.
    await inTransaction(
      this.conn,
      async () => {
        // Made as they are appended: a value the column refuses fails the write part-way (see `appendRows`).
        const rows = (function* () {
          for (const v of vectors)
            yield [
              v.pair,
              BigInt(v.windowEnd),
              BigInt(v.windowStart),
              v.exchange,
              v.close,
              v.ready,
              ...v.values,
            ];
        })();
        if (fresh) await appendRows(this.conn, t, rows);
        else await appendRows(this.conn, `${t}_staging`, rows, 'temp');
        if (!fresh) await upsertStaged(this.conn, t);
        await moveOnlineForward(this.conn, t, latestReadyPerPair(vectors));
      },
      `${t}_staging`,
    );
    // Committed: the write is stored whatever follows. A backfill batch that failed meanwhile drops the entry from
    // outside this queue (`forget`); then there is nothing to update, and the next write reads the table again.
    const last = this.maxEnd.get(t);
    if (last !== undefined)
      for (const v of vectors)
        if (v.windowEnd > (last.get(v.pair) ?? Number.NEGATIVE_INFINITY)) last.set(v.pair, v.windowEnd);
  }

  async writeColumns(set: FeatureSetDefinition, rows: FeatureColumns): Promise<void> {
    if (this.session.path === ':memory:') return this.serial(() => this._writeColumns(set, rows));
    // Queued as any call, but only until the rows are read: the commit goes on beside the next call.
    const { done } = await this.session.serial(() => this._writeColumnsOverlapping(set, rows));
    return done;
  }

  /** Fresh rows through `DuckDbOverlappingInserts`; others (an upsert) after its batches, as `_writeColumns`. */
  private async _writeColumnsOverlapping(
    set: FeatureSetDefinition,
    rows: FeatureColumns,
  ): Promise<{ done: Promise<void> }> {
    if (rows.length === 0) return { done: Promise.resolve() };
    await this._migrate(set);
    const t = tableName(set);
    if (!(await this.allNewerRows(t, rows))) {
      await this.overlapping?.settled;
      await this._writeColumns(set, rows, false);
      return { done: Promise.resolve() };
    }
    this.overlapping ??= await DuckDbOverlappingInserts.open(this.session.path);
    // What this store remembers of the table may be ahead of it after a failure: read it again next time.
    const forget = (err: unknown) => {
      this.maxEnd.delete(t);
      throw err;
    };
    const { done } = await this.overlapping
      .insert(set, t, rows, latestReadyRowPerPair(set, rows))
      .catch(forget);
    return { done: done.catch(forget) };
  }

  private readonly sources = new Map<string, DuckDbColumnSource>();

  /** `fresh`: already found by the caller (`allNewerRows` is asked once per batch: it records the batch's ends). */
  private async _writeColumns(
    set: FeatureSetDefinition,
    rows: FeatureColumns,
    fresh?: boolean,
  ): Promise<void> {
    if (rows.length === 0) return;
    await this._migrate(set);
    const t = tableName(set);
    let src = this.sources.get(t);
    if (src === undefined) {
      src = DuckDbColumnSource.register(this.conn, set);
      this.sources.set(t, src);
    }
    // As `write`: rows all newer than the table's go straight in (one INSERT, one transaction); otherwise staged
    // and upserted.
    fresh ??= await this.allNewerRows(t, rows);
    // One DuckDB thread for the bulk write: the source is one scan filled from the JavaScript thread, so a second
    // thread only waited for it, spinning (measured on 2 cores: a year of rows took the same time with 1 thread as
    // with 2, and about 0.6 s less CPU). The setting is the database's: put back as it was after the write.
    const threads = await duckDbThreads(this.conn);
    if (threads !== 1) await this.conn.run('SET threads = 1');
    try {
      await inTransaction(
        this.conn,
        async () => {
          if (fresh) await src.insert(this.conn, rows, t);
          else {
            await src.insert(this.conn, rows, `${t}_staging`);
            await upsertStaged(this.conn, t);
          }
          await moveOnlineForward(this.conn, t, latestReadyRowPerPair(set, rows));
        },
        `${t}_staging`,
      );
    } catch (err) {
      // What this store remembers of the table may be ahead of it now: read it again next time.
      this.maxEnd.delete(t);
      throw err;
    } finally {
      // A setting for speed: failing to put it back must not report a committed write failed.
      if (threads !== 1) await this.conn.run(`SET threads = ${threads}`).catch(() => {});
    }
  }

  private async allNewerRows(t: string, rows: FeatureColumns): Promise<boolean> {
    let last = this.maxEnd.get(t);
    if (last === undefined) {
      const r = await this.conn.runAndReadAll(`SELECT pair, max(window_end) AS w FROM ${t} GROUP BY pair`);
      last = new Map(r.getRowObjects().map((x) => [String(x.pair), Number(x.w)]));
      this.maxEnd.set(t, last);
    }
    const seen = new Map<string, number>();
    let fresh = true;
    for (let i = 0; i < rows.length && fresh; i++) {
      const pair = rows.pair[i]!;
      const floor = seen.get(pair) ?? last.get(pair) ?? Number.NEGATIVE_INFINITY;
      if (rows.windowEnd[i]! <= floor) fresh = false;
      seen.set(pair, rows.windowEnd[i]!);
    }
    for (let i = 0; i < rows.length; i++) {
      const pair = rows.pair[i]!;
      if (rows.windowEnd[i]! > (last.get(pair) ?? Number.NEGATIVE_INFINITY))
        last.set(pair, rows.windowEnd[i]!);
    }
    return fresh;
  }

  /** Latest windowEnd per pair per table, kept in memory after a first read. */
  private readonly maxEnd = new Map<string, Map<string, number>>();

  private async allNewer(t: string, vectors: readonly FeatureVectorRecord[]): Promise<boolean> {
    let last = this.maxEnd.get(t);
    if (last === undefined) {
      const r = await this.conn.runAndReadAll(`SELECT pair, max(window_end) AS w FROM ${t} GROUP BY pair`);
      last = new Map(r.getRowObjects().map((x) => [String(x.pair), Number(x.w)]));
      this.maxEnd.set(t, last);
    }
    const seen = new Map<string, number>();
    for (const v of vectors) {
      const floor = seen.get(v.pair) ?? last.get(v.pair) ?? Number.NEGATIVE_INFINITY;
      if (v.windowEnd <= floor) return false;
      seen.set(v.pair, v.windowEnd);
    }
    return true;
  }

  async asOf(set: FeatureSetDefinition, pair: string, ts: number): Promise<FeatureVectorRecord | undefined> {
    return (await this.asOfMany(set, pair, [ts]))[0];
  }

  async asOfMany(
    set: FeatureSetDefinition,
    pair: string,
    ts: readonly number[],
  ): Promise<(FeatureVectorRecord | undefined)[]> {
    return this.serial(() => this._asOfMany(set, pair, ts));
  }

  private async _asOfMany(
    set: FeatureSetDefinition,
    pair: string,
    ts: readonly number[],
  ): Promise<(FeatureVectorRecord | undefined)[]> {
    await this._migrate(set);
    if (ts.length === 0) return [];
    const t = tableName(set);
    await this.conn.run('CREATE OR REPLACE TEMP TABLE asof_probe (i INTEGER, ts BIGINT)');
    const app = await this.conn.createAppender('asof_probe', 'main', 'temp');
    ts.forEach((x, i) => {
      app.appendInteger(i);
      app.appendBigInt(BigInt(x));
      app.endRow();
    });
    app.closeSync();
    const r = await this.conn.runAndReadAll(
      `SELECT p.i, f.* FROM asof_probe p ASOF LEFT JOIN (SELECT * FROM ${t} WHERE pair = $1) f ON f.window_end <= p.ts ORDER BY p.i`,
      [pair],
    );
    return r.getRowObjects().map((row) => (row.pair === null ? undefined : vectorFromRow(set, row)));
  }

  async history(
    set: FeatureSetDefinition,
    pair: string,
    fromTs: number,
    toTs: number,
  ): Promise<FeatureVectorRecord[]> {
    return this.serial(() => this._history(set, pair, fromTs, toTs));
  }

  private async _history(
    set: FeatureSetDefinition,
    pair: string,
    fromTs: number,
    toTs: number,
  ): Promise<FeatureVectorRecord[]> {
    await this._migrate(set);
    const r = await this.conn.runAndReadAll(
      `SELECT * FROM ${tableName(set)} WHERE pair = $1 AND window_end >= $2 AND window_end < $3 ORDER BY window_end`,
      [pair, BigInt(fromTs), BigInt(toTs)],
    );
    return r.getRowObjects().map((row) => vectorFromRow(set, row));
  }

  async online(set: FeatureSetDefinition, pair: string, now = Date.now()): Promise<OnlineVector | undefined> {
    return this.serial(() => this._online(set, pair, now));
  }

  private async _online(
    set: FeatureSetDefinition,
    pair: string,
    now = Date.now(),
  ): Promise<OnlineVector | undefined> {
    await this._migrate(set);
    const t = tableName(set);
    const r = await this.conn.runAndReadAll(`SELECT * FROM ${t}_online WHERE pair = $1`, [pair]);
    let row = r.getRowObjects()[0];
    if (row === undefined) return undefined;
    if (Number(row.window_end) > now) {
      // The online row is from after `now` (asked about the past): the latest ready vector known at `now`.
      const past = await this.conn.runAndReadAll(
        `SELECT * FROM ${t} WHERE pair = $1 AND ready AND window_end <= $2 ORDER BY window_end DESC LIMIT 1`,
        [pair, BigInt(now)],
      );
      row = past.getRowObjects()[0];
      if (row === undefined) return undefined;
    }
    const vector = vectorFromRow(set, row);
    return { vector, ageMs: now - vector.windowEnd };
  }

  async latest(set: FeatureSetDefinition): Promise<Map<string, number>> {
    return this.serial(() => this._latest(set));
  }

  private async _latest(set: FeatureSetDefinition): Promise<Map<string, number>> {
    await this._migrate(set);
    const r = await this.conn.runAndReadAll(
      `SELECT pair, max(window_end) AS w FROM ${tableName(set)} GROUP BY pair`,
    );
    return new Map(r.getRowObjects().map((x) => [String(x.pair), Number(x.w)]));
  }

  async count(set: FeatureSetDefinition): Promise<number> {
    return this.serial(() => this._count(set));
  }

  private async _count(set: FeatureSetDefinition): Promise<number> {
    await this._migrate(set);
    const r = await this.conn.runAndReadAll(`SELECT count(*) AS n FROM ${tableName(set)}`);
    return Number(r.getRowObjects()[0]!.n);
  }

  async close(): Promise<void> {
    await this.session.serial(async () => {
      await this.overlapping?.close();
    });
    await this.session.close();
  }
}
