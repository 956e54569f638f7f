import type { DuckDBConnection } from '@duckdb/node-api';

/**
 * Statements the DuckDB feature store runs from more than one place (its own connection, and the extra connections of
 * a backfill's overlapping batches: duckdb-overlapping.ts).
 */

/**
 * Moves the online vector of each pair forward only, to the given row of the history table (the latest ready vector
 * of a write, found in JavaScript: a few rows); an online vector already later is kept. Runs in the caller's
 * transaction.
 */
export async function moveOnlineForward(
  conn: DuckDBConnection,
  table: string,
  latest: Iterable<{ pair: string; windowEnd: number }>,
): Promise<void> {
  for (const v of latest)
    await conn.run(
      `INSERT OR REPLACE INTO ${table}_online SELECT * FROM ${table} WHERE pair = $1 AND window_end = $2
       AND NOT EXISTS (SELECT 1 FROM ${table}_online o WHERE o.pair = $1 AND o.window_end > $2)`,
      [v.pair, BigInt(v.windowEnd)],
    );
}

/**
 * The staged rows into the history table, replacing the rows of the same (pair, windowEnd), except a ready row by a
 * not-ready one: a backfill re-run over the later part of a stored range starts with a warm-up, and its first
 * vectors replaced the ready ones the full run had stored for those minutes. Runs in the caller's transaction.
 */
export async function upsertStaged(conn: DuckDBConnection, table: string): Promise<void> {
  await conn.run(
    `DELETE FROM ${table}_staging s WHERE NOT s.ready
       AND EXISTS (SELECT 1 FROM ${table} h WHERE h.pair = s.pair AND h.window_end = s.window_end AND h.ready)`,
  );
  await conn.run(`INSERT OR REPLACE INTO ${table} SELECT * FROM ${table}_staging`);
}

/** The database's thread setting (the store sets it to 1 around a bulk write and puts it back). */
export async function duckDbThreads(conn: DuckDBConnection): Promise<number> {
  const r = await conn.runAndReadAll(`SELECT current_setting('threads') AS n`);
  return Number(r.getRowObjects()[0]!.n);
}
