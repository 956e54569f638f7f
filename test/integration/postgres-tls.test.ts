import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CryptocastError } from '../../src/core/errors.ts';
import { readiness } from '../../src/core/readiness.ts';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import { PostgresTable } from '../../src/stores/postgres-table.ts';
import type { TableSpec } from '../../src/stores/table.ts';
import { exitedWithin, runCli } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';
import { tempDirs } from '../support/embedded-run.ts';
import { testCa } from '../support/test-ca.ts';
import { settlesWithin, waitFor } from '../support/wait.ts';

/**
 * A PostgreSQL reached as a managed service is: TLS only, its certificate signed by a CA of its own, a password checked
 * with scram-sha-256 (scripts/postgres-tls.sh; a fresh CA and certificate at every start; PG_TLS_PORT, default 55433).
 * The URL carries no secret: the password comes from PGPASSWORD, as a deployment sets it from a Secret.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'postgres-tls.sh');
const PORT = process.env.PG_TLS_PORT ?? '55433';
const PASSWORD = 'Tls-pw-of-test-81';
const dir = tempDirs();

interface Row {
  pair: string;
  t: number;
  v: number;
}
const SPEC: TableSpec<Row> = {
  name: `tls_round_trip_${process.pid}`,
  key: ['pair', 't'],
  columns: [
    { name: 'pair', type: 'text', get: (r) => r.pair },
    { name: 't', type: 'bigint', get: (r) => r.t },
    { name: 'v', type: 'double', get: (r) => r.v },
  ],
  fromRow: (r) => ({ pair: String(r.pair), t: Number(r.t), v: Number(r.v) }),
};

/** Opening must end (a refusal waiting does not mend is not waited out): bounded, whatever the error. */
const opened = <T>(p: Promise<T>) => settlesWithin(p, 30_000, 'the store to open or fail');

function rejectsWith(code: string, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CryptocastError, String((err as Error).stack ?? err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(PASSWORD), err.message);
    assert.ok(!String(err.hint).includes(PASSWORD), err.hint);
    return true;
  };
}

describe('PostgreSQL over TLS, with a password from the environment', () => {
  let ca = '';
  let wrongCa = '';
  let previous: string | undefined;
  const url = (query: string, host = '127.0.0.1') =>
    `postgres://cryptocast@${host}:${PORT}/cryptocast?${query}`;

  before(() => {
    const env = { ...process.env, PG_TLS_PORT: PORT, PG_TLS_PASSWORD: PASSWORD };
    execFileSync('bash', [SCRIPT, 'start'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    ca = execFileSync('bash', [SCRIPT, 'ca'], { env, encoding: 'utf8' }).trim();
    // Another CA, made now: it signed nothing the server holds.
    wrongCa = testCa(dir('cc-pg-wrong-ca-'), 'another CA');
    previous = process.env.PGPASSWORD;
    process.env.PGPASSWORD = PASSWORD;
  });
  after(() => {
    if (previous === undefined) delete process.env.PGPASSWORD;
    else process.env.PGPASSWORD = previous;
    // Not left running after the suite (a second clone's run starts it again: its certificates are made at each start).
    execFileSync('bash', [SCRIPT, 'stop'], { env: { ...process.env, PG_TLS_PORT: PORT }, stdio: 'ignore' });
  });

  it('verify-full against the CA: a store round trip, on an encrypted connection', async () => {
    const t = await opened(PostgresTable.open(SPEC, url(`sslmode=verify-full&sslrootcert=${ca}`)));
    try {
      await t.write([
        { pair: 'BTC/USD', t: 60_000, v: 1.5 },
        { pair: 'BTC/USD', t: 120_000, v: 2.5 },
      ]);
      assert.deepEqual(await t.range('BTC/USD', 0, 180_000), [
        { pair: 'BTC/USD', t: 60_000, v: 1.5 },
        { pair: 'BTC/USD', t: 120_000, v: 2.5 },
      ]);
      const pool = (t as unknown as { pool: import('pg').Pool }).pool;
      const ssl = await pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      assert.equal(ssl.rows[0].ssl, true);
      await pool.query(`DROP TABLE ${SPEC.name}`);
    } finally {
      await t.close();
    }
  });

  it('the feature store too: verify-full with the CA from PGSSLROOTCERT and the mode from PGSSLMODE', async () => {
    const before = { mode: process.env.PGSSLMODE, ca: process.env.PGSSLROOTCERT };
    process.env.PGSSLMODE = 'verify-full';
    process.env.PGSSLROOTCERT = ca;
    try {
      const store = await opened(
        PostgresFeatureStore.open(`postgres://cryptocast@127.0.0.1:${PORT}/cryptocast`, { giveUpAfterMs: 0 }),
      );
      await store.close();
    } finally {
      for (const [k, v] of [
        ['PGSSLMODE', before.mode],
        ['PGSSLROOTCERT', before.ca],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it('require: encrypted without a CA to check against (libpq), where it was refused as verify-full', async () => {
    const t = await opened(PostgresTable.open(SPEC, url('sslmode=require')));
    await t.close();
  });

  it('verify-ca checks the CA, not the host name; verify-full refuses a host the certificate does not name', async () => {
    const t = await opened(PostgresTable.open(SPEC, url(`sslmode=verify-ca&sslrootcert=${ca}`, '127.0.0.2')));
    await t.close();
    await assert.rejects(
      opened(PostgresTable.open(SPEC, url(`sslmode=verify-full&sslrootcert=${ca}`, '127.0.0.2'))),
      rejectsWith('CC_ERR_STORE_TLS', /certificate is not issued for this host/),
    );
  });

  it('a wrong CA: CC_ERR_STORE_TLS, the certificate not trusted, at once (not waited for as an outage)', async () => {
    await assert.rejects(
      opened(PostgresTable.open(SPEC, url(`sslmode=verify-full&sslrootcert=${wrongCa}`))),
      rejectsWith(
        'CC_ERR_STORE_TLS',
        /PostgreSQL at 127\.0\.0\.1:\d+: the server's certificate is not trusted/,
      ),
    );
  });

  it('a wrong password: CC_ERR_STORE_AUTH, saying so without the password', async () => {
    const wrong = `${PASSWORD}-but-wrong`;
    await assert.rejects(
      opened(
        PostgresTable.open(
          SPEC,
          `postgres://cryptocast:${wrong}@127.0.0.1:${PORT}/cryptocast?sslmode=require`,
        ),
      ),
      (err: unknown) => {
        rejectsWith('CC_ERR_STORE_AUTH', /the password was refused .*password authentication failed/)(err);
        assert.ok(!(err as Error).message.includes(wrong));
        return true;
      },
    );
  });

  it('the command line: one catalogued line and its hint for a wrong CA, no stack, no password', async () => {
    const zip = join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
    );
    const run = runCli(['features', '--candles', zip, '--output', join(dir('cc-pg-tls-cli-'), 'f.csv')], {
      CRYPTOCAST_STORE_BACKFILL: url(`sslmode=verify-full&sslrootcert=${wrongCa}`),
      PGPASSWORD: PASSWORD,
    });
    assert.equal(await exitedWithin(run, 120_000, 'features to end'), 2, run.stderr());
    const err = run.stderr();
    assert.match(err, /certificate is not trusted .*\[CC_ERR_STORE_TLS\]/);
    assert.match(err, /hint: give the CA that signed the server's certificate/);
    assert.ok(!/^\s+at /m.test(err), err);
    assert.ok(!err.includes(PASSWORD), err);
  });

  it('no sslmode at a TLS-only server (libpq would have tried TLS): CC_ERR_STORE_TLS saying so, not an outage', async () => {
    const mode = process.env.PGSSLMODE;
    delete process.env.PGSSLMODE;
    try {
      await opened(PostgresTable.open(SPEC, url(''))).then(
        () => assert.fail('a plain connection was let in'),
        rejectsWith('CC_ERR_STORE_TLS', /accepts TLS connections only from here, and this one is plain/),
      );
    } finally {
      if (mode !== undefined) process.env.PGSSLMODE = mode;
    }
  });

  it('no sslmode, refused in plain text where TLS is not admitted either (a server not provisioned yet): waited for, not CC_ERR_STORE_TLS', async () => {
    const mode = process.env.PGSSLMODE;
    delete process.env.PGSSLMODE;
    const stop = new AbortController();
    try {
      // pg_hba.conf admits TLS for the database cryptocast only (scripts/postgres-tls.sh): the same refusal in plain
      // text ("…, no encryption") as at a TLS-only server, but no TLS line either — provisioning that may yet come.
      const opening = PostgresTable.open(
        SPEC,
        `postgres://cryptocast@127.0.0.1:${PORT}/not_provisioned_yet`,
        { signal: stop.signal },
      ).then(
        () => assert.fail('a connection was let in'),
        (err: unknown) => err,
      );
      await waitFor(
        'the refusal reported as a dependency waited for',
        () => readiness().reason ?? '',
        (reason) => /postgresql: .*no encryption/.test(reason),
        { timeoutMs: 30_000 },
      );
      stop.abort();
      const err = await settlesWithin(opening, 30_000, 'the open to end on the stop');
      assert.ok(!(err instanceof CryptocastError && err.code === 'CC_ERR_STORE_TLS'), String(err));
    } finally {
      stop.abort();
      if (mode !== undefined) process.env.PGSSLMODE = mode;
    }
  });

  // Last: it gives the server a new CA and certificate (then `ca` names the new CA).
  it('the server certificate replaced after the store opened, by one the CA does not sign: CC_ERR_STORE_TLS on /ready', async () => {
    const spec = { ...SPEC, name: `tls_replaced_${process.pid}` };
    const t = await opened(PostgresTable.open(spec, url(`sslmode=verify-full&sslrootcert=${ca}`)));
    try {
      await t.write([{ pair: 'BTC/USD', t: 60_000, v: 1.5 }]);
      // A fresh CA and certificate, the server reloaded; its sessions ended, so the pool connects again.
      const env = { ...process.env, PG_TLS_PORT: PORT, PG_TLS_PASSWORD: PASSWORD };
      execFileSync('bash', [SCRIPT, 'start'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
      execFileSync(
        'runuser',
        ['-u', 'postgres', '--', 'psql', '-q', '-p', PORT, '-d', 'postgres', '-c'].concat(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'cryptocast'",
        ),
        { stdio: 'ignore' },
      );
      // The first query after it may still meet the dying session; the next connect meets the new certificate.
      const failure = await waitFor(
        'a query to fail on the replaced certificate',
        () =>
          t.range('BTC/USD', 0, 180_000).then(
            () => undefined,
            (err: unknown) => err,
          ),
        (err) => err !== undefined && !/terminat|Connection terminated/i.test((err as Error).message),
        { timeoutMs: 30_000 },
      );
      assert.ok(rejectsWith('CC_ERR_STORE_TLS', /the server's certificate is not trusted/)(failure));
      assert.match(readiness().reason ?? '', /postgresql: .*certificate is not trusted/);
    } finally {
      await t.close();
      ca = execFileSync('bash', [SCRIPT, 'ca'], {
        env: { ...process.env, PG_TLS_PORT: PORT },
        encoding: 'utf8',
      }).trim();
    }
  });
});
