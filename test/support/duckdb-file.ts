import { execFileSync } from 'node:child_process';
import { DuckDBInstance } from '@duckdb/node-api';

/**
 * Runs SQL against a DuckDB file in a **new process** (what a user's next command, or a restart, would see — not
 * the writer's own cached view) and returns the rows. Read-only: the file is never changed.
 */
export function queryInNewProcess(file: string, sql: string): Record<string, unknown>[] {
  const script = `
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(${JSON.stringify(file)}, { access_mode: 'READ_ONLY' });
    const c = await db.connect();
    const r = await c.runAndReadAll(${JSON.stringify(sql)});
    process.stdout.write(JSON.stringify(r.getRowObjectsJson()));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: `${import.meta.dirname}/../..`,
    encoding: 'utf8',
  });
  return JSON.parse(out) as Record<string, unknown>[];
}

/** Number of rows and of distinct keys of `table` (0, 0 when the table does not exist). */
export function countsInNewProcess(file: string, table: string, key: string): { rows: number; keys: number } {
  const exists = queryInNewProcess(
    file,
    `SELECT count(*) AS n FROM information_schema.tables WHERE table_name = '${table}'`,
  );
  if (Number(exists[0]!.n) === 0) return { rows: 0, keys: 0 };
  const r = queryInNewProcess(
    file,
    `SELECT count(*) AS rows, count(DISTINCT (${key})) AS keys FROM ${table}`,
  )[0]!;
  return { rows: Number(r.rows), keys: Number(r.keys) };
}

/**
 * Runs one statement on a DuckDB file opened and closed here, outside `openDuckDb` (as another program's or another
 * version's run would have left the file), and returns its rows.
 */
export async function sqlOutsideTheStore(
  file: string,
  statement: string,
): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(file);
  const c = await db.connect();
  try {
    return (await c.runAndReadAll(statement)).getRowObjects();
  } finally {
    c.closeSync();
    db.closeSync();
  }
}
