import type { DuckDBConnection } from '@duckdb/node-api';
import { type DuckDbSession, inTransaction, openDuckDb } from '../../core/duckdb.ts';
import type { FeatureVectorRecord } from '../../schemas/feature.ts';
import { DuckDbColumnSource } from './duckdb-columns.ts';
import { duckDbThreads, moveOnlineForward } from './duckdb-statements.ts';
import { type FeatureColumns, type FeatureSetDefinition, RowsStoredError } from './store.ts';

/**
 * A backfill's batches into a DuckDB file, one batch's INSERT running while the batch before it commits.
 *
 * Why: a serial INSERT into DuckDB leaves its row groups in memory, and its COMMIT compresses and writes them, alone
 * on one core (about as long as the INSERT). With two connections taking turns, the INSERT of batch k+1 (its chunks
 * pulled from the JavaScript thread) runs beside the COMMIT of batch k: a year of minutes took a median 2.85 s
 * against 3.34 s with one connection (whole command, 5 alternating rounds; src/features/backfill.ts).
 *
 * Only for rows newer than everything the table holds for their pair (the store checks): the batches' keys are then
 * disjoint, so two open transactions never touch the same row of the table.
 *
 * Order and failure: batch k+1 commits only after batch k has committed (a failed batch k rolls k+1 back), and after
 * a failed batch no other is taken (each is refused with the first error: a backfill stops at its first error, and a
 * rerun opens a new store), so the table never has a later batch without an earlier one: a resumed writer (`latest`)
 * finds no gap behind it. The
 * online vectors are moved in a transaction of their own right after each commit (in the batch's transaction they
 * would conflict with the next batch's, which began before that commit). A crash between the two leaves the table
 * ahead of the online table by one batch; rerunning the backfill (it is idempotent: its rows are then not newer, so
 * the store takes its staged upsert) moves them. A failure of the move itself is a `RowsStoredError`: the caller
 * counts the rows as stored (they are) and stops.
 */
export class DuckDbOverlappingInserts {
  private readonly sessions: readonly DuckDbSession[];
  private readonly sources = new Map<string, DuckDbColumnSource>();
  private turn = 0;
  /** Batches begun and not yet settled. */
  private pending = 0;
  /** The latest batch's commit and online move: the next batch commits after it. */
  private last: Promise<void> = Promise.resolve();
  /** DuckDB's thread setting before the first pending batch, put back when none is left. */
  private threadsBefore = 1;
  /** The first batch that failed: no batch is taken after it. */
  private failure: Error | undefined;
  /** Settles (never rejects) once every batch begun so far has committed or failed and the thread setting is back. */
  settled: Promise<void> = Promise.resolve();

  private constructor(sessions: readonly DuckDbSession[]) {
    this.sessions = sessions;
  }

  /** Two more connections to the database at `path` (a file: `:memory:` would open other databases). */
  static async open(path: string): Promise<DuckDbOverlappingInserts> {
    const a = await openDuckDb(path);
    try {
      return new DuckDbOverlappingInserts([a, await openDuckDb(path)]);
    } catch (err) {
      await a.close();
      throw err;
    }
  }

  /**
   * Inserts `rows` into `table` in a transaction of its own. Resolves once the rows have been read (the caller may
   * reuse its buffer), with `done`: the commit and the move of the online vectors to `online` (the batch's latest
   * ready vector per pair, read from `rows` beforehand).
   */
  async insert(
    set: FeatureSetDefinition,
    table: string,
    rows: FeatureColumns,
    online: readonly FeatureVectorRecord[],
  ): Promise<{ done: Promise<void> }> {
    if (this.failure !== undefined)
      throw new Error(`not written: an earlier batch failed (${this.failure.message})`, {
        cause: this.failure,
      });
    const session = this.sessions[this.turn++ % this.sessions.length]!;
    const conn = session.conn;
    if (this.pending === 0) {
      await this.settled;
      // One DuckDB thread, as the store's single-connection write (duckdb.ts): each INSERT is one scan filled from
      // the JavaScript thread, and the second connection is the parallelism.
      this.threadsBefore = await duckDbThreads(conn);
      if (this.threadsBefore !== 1) await conn.run('SET threads = 1');
    }
    this.pending++;
    let done: Promise<void>;
    try {
      await conn.run('BEGIN TRANSACTION');
      try {
        await this.source(session, set).insert(conn, rows, table);
      } catch (err) {
        this.failure ??= err as Error;
        await rollback(conn);
        throw err;
      }
      const previous = this.last;
      done = (async () => {
        try {
          await previous;
        } catch (err) {
          await rollback(conn);
          throw new Error(`not committed: an earlier batch failed (${(err as Error).message})`, {
            cause: err,
          });
        }
        try {
          await conn.run('COMMIT');
        } catch (err) {
          this.failure ??= err as Error;
          await rollback(conn);
          throw err;
        }
        await moveOnline(conn, table, online).catch((err) => {
          this.failure ??= err as Error;
          throw new RowsStoredError(
            `${table}: the batch's rows were stored, its online vectors not moved: ${(err as Error).message}`,
            { cause: err },
          );
        });
      })();
    } catch (err) {
      await this.release(conn);
      throw err;
    }
    this.last = done;
    const release = () => this.release(conn);
    this.settled = done.then(release, release);
    return { done };
  }

  async close(): Promise<void> {
    await this.settled;
    for (const s of this.sessions) await s.close();
  }

  private async release(conn: DuckDBConnection): Promise<void> {
    if (--this.pending > 0 || this.threadsBefore === 1) return;
    // A setting for speed: failing to put it back (a database that just failed) must not fail the batches or leave
    // `settled` rejected (every later call awaits it).
    await conn.run(`SET threads = ${this.threadsBefore}`).catch(() => {});
  }

  private source(session: DuckDbSession, set: FeatureSetDefinition): DuckDbColumnSource {
    const key = `${this.sessions.indexOf(session)}:${set.name}:${set.version}`;
    let src = this.sources.get(key);
    if (src === undefined) {
      src = DuckDbColumnSource.register(session.conn, set);
      this.sources.set(key, src);
    }
    return src;
  }
}

/** Rolls back what is left of a transaction: after a failed COMMIT DuckDB has already, and says so. */
async function rollback(conn: DuckDBConnection): Promise<void> {
  await conn.run('ROLLBACK').catch(() => {});
}

/** The batch's online vectors, moved forward in a transaction of their own (see the class comment). */
async function moveOnline(
  conn: DuckDBConnection,
  table: string,
  online: readonly FeatureVectorRecord[],
): Promise<void> {
  if (online.length === 0) return;
  await inTransaction(conn, () => moveOnlineForward(conn, table, online));
}
