import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';

/**
 * The real PostgreSQL of the integration tests: the server CRYPTOCAST_TEST_PG names, or else scripts/postgres.sh's
 * local cluster, started when a test needs it (idempotent).
 */
export const PG_URL = process.env.CRYPTOCAST_TEST_PG ?? 'postgres://cryptocast@127.0.0.1:55432/cryptocast';
const ROOT = join(import.meta.dirname, '..', '..');

export function ensurePostgres(): void {
  if (process.env.CRYPTOCAST_TEST_PG) return;
  execFileSync('bash', [join(ROOT, 'scripts', 'postgres.sh'), 'start'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/**
 * A schema of a test's own, named after its topic prefix, so that runs never see each other's tables; `url` is the
 * store URL whose tables live there.
 */
export function testSchema(prefix: string) {
  const name = prefix
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .replace(/_+$/, '');
  const sql = async (statement: string) => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  return {
    name,
    url: `${PG_URL}?options=-c%20search_path%3D${name}`,
    create: async () => {
      ensurePostgres();
      await sql(`CREATE SCHEMA ${name}`);
    },
    drop: () => sql(`DROP SCHEMA IF EXISTS ${name} CASCADE`),
  };
}
