import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CryptocastError } from '../../../src/core/errors.ts';
import { redirectLogLines } from '../../../src/core/log.ts';
import { startMetricsServer } from '../../../src/core/metrics-server.ts';
import { readiness } from '../../../src/core/readiness.ts';
import { PostgresFeatureStore } from '../../../src/features/store/postgres.ts';
import { PREDICTIONS_SPEC } from '../../../src/inference/store/rows.ts';
import { pgConnectError, pgConnectionConfig } from '../../../src/stores/pg-connection.ts';
import { PostgresTable } from '../../../src/stores/postgres-table.ts';
import { tempDirs } from '../../support/embedded-run.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

const dir = tempDirs();
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
function caFile(): string {
  const f = join(dir('cc-pg-ca-'), 'ca.crt');
  writeFileSync(f, PEM);
  return f;
}
const configError = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof CryptocastError);
  assert.equal(err.code, 'CC_ERR_CONFIG');
  assert.match(err.message, pattern);
  return true;
};

describe('pgConnectionConfig: TLS as libpq means it, the password from the URL or PGPASSWORD', () => {
  const base = 'postgres://cc@db.example:6432/prod';

  it('no sslmode anywhere: plain text, as before (the driver does not read PGSSLMODE behind config/env.ts)', () => {
    const c = pgConnectionConfig(base, {});
    assert.equal(c.ssl, false);
    assert.equal(c.host, 'db.example');
    assert.equal(c.port, 6432);
    assert.equal(c.database, 'prod');
    assert.equal(c.user, 'cc');
  });

  it('require: encrypted, the certificate not checked; with a CA, the chain checked and not the host (verify-ca)', () => {
    assert.deepEqual(pgConnectionConfig(`${base}?sslmode=require`, {}).ssl, { rejectUnauthorized: false });
    const ca = caFile();
    const c = pgConnectionConfig(`${base}?sslmode=require&sslrootcert=${ca}`, {});
    const ssl = c.ssl as { ca: string; checkServerIdentity: () => unknown; rejectUnauthorized?: boolean };
    assert.equal(ssl.ca, PEM);
    assert.equal(ssl.rejectUnauthorized, undefined);
    assert.equal(ssl.checkServerIdentity(), undefined);
  });

  it('verify-ca needs a CA; verify-full checks the host, against the CA or the system CAs', () => {
    assert.throws(
      () => pgConnectionConfig(`${base}?sslmode=verify-ca`, {}),
      configError(/verify-ca needs the CA/),
    );
    const ca = caFile();
    const full = pgConnectionConfig(`${base}?sslmode=verify-full&sslrootcert=${ca}`, {}).ssl as object;
    assert.deepEqual(full, { ca: PEM });
    assert.deepEqual(pgConnectionConfig(`${base}?sslmode=verify-full`, {}).ssl, {});
  });

  it('PGSSLMODE and PGSSLROOTCERT when the URL has none; the URL wins; the other parameters kept', () => {
    const ca = caFile();
    const env = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca };
    const c = pgConnectionConfig(`${base}?options=-c%20search_path%3Dx&query_timeout=1500`, env);
    assert.deepEqual(c.ssl, { ca: PEM });
    assert.equal((c as { options?: string }).options, '-c search_path=x');
    assert.equal(String(c.query_timeout), '1500');
    assert.equal(pgConnectionConfig(`${base}?sslmode=disable`, env).ssl, false);
  });

  it('node-postgres’s ?ssl=true is still TLS (verify-full), never dropped to plain text; a client certificate is kept', () => {
    assert.deepEqual(pgConnectionConfig(`${base}?ssl=true`, {}).ssl, {});
    assert.equal(pgConnectionConfig(`${base}?ssl=0`, {}).ssl, false);
    const d = dir('cc-pg-client-');
    writeFileSync(join(d, 'c.crt'), 'CERT');
    writeFileSync(join(d, 'c.key'), 'KEY');
    const ca = caFile();
    const c = pgConnectionConfig(
      `${base}?sslmode=verify-full&sslrootcert=${ca}&sslcert=${d}/c.crt&sslkey=${d}/c.key`,
      {},
    );
    assert.deepEqual(c.ssl, { cert: 'CERT', key: 'KEY', ca: PEM });
  });

  it('refuses a mode it cannot honour, and a CA file it cannot read, with CC_ERR_CONFIG', () => {
    // libpq's prefer and allow: refused, saying which supported mode gives what they would have given.
    assert.throws(
      () => pgConnectionConfig(`${base}?sslmode=prefer`, {}),
      (err: unknown) => {
        configError(/sslmode must be disable/)(err);
        assert.match(
          String((err as CryptocastError).hint),
          /fall-backs to plain text.*verify-full.*require.*disable/,
        );
        return true;
      },
    );
    assert.throws(
      () => pgConnectionConfig(base, { PGSSLMODE: 'allow' }),
      configError(/^PGSSLMODE must be .*prefer and allow.* not supported: verify-full or require .*disable/),
    );
    assert.throws(
      () => pgConnectionConfig(base, { PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/nonexistent/ca.crt' }),
      configError(/CA file \/nonexistent\/ca\.crt cannot be read/),
    );
    const notPem = join(dir('cc-pg-ca-'), 'x.crt');
    writeFileSync(notPem, 'not a certificate');
    assert.throws(
      () => pgConnectionConfig(`${base}?sslmode=verify-full&sslrootcert=${notPem}`, {}),
      configError(/holds no PEM certificate/),
    );
  });

  it('the password: the URL’s, or else PGPASSWORD (a URL without secrets in a ConfigMap)', () => {
    assert.equal(pgConnectionConfig(base, { PGPASSWORD: 'from-the-secret' }).password, 'from-the-secret');
    assert.equal(
      pgConnectionConfig('postgres://cc:in%40url@db.example/prod', { PGPASSWORD: 'from-the-secret' })
        .password,
      'in@url',
    );
    assert.equal(pgConnectionConfig(base, {}).password, undefined);
  });

  it('pgConnectError names the cause of a refusal and passes anything else through', () => {
    const config = pgConnectionConfig(base, {});
    const untrusted = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    const tls = pgConnectError(untrusted, config) as CryptocastError;
    assert.equal(tls.code, 'CC_ERR_STORE_TLS');
    assert.match(tls.message, /^PostgreSQL at db\.example:6432: the server's certificate is not trusted/);
    const auth = pgConnectError(
      Object.assign(new Error('password authentication failed for user "cc"'), { code: '28P01' }),
      config,
    ) as CryptocastError;
    assert.equal(auth.code, 'CC_ERR_STORE_AUTH');
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(pgConnectError(refused, config), refused);
  });
});

/**
 * The password must reach no log line, no readiness answer, no metric and no error. A store pointed at a port where no
 * server listens (as a mistyped host or a server down would) is waited for: the log says why, /ready answers 503 with
 * the reason, then the stop ends the wait with the error.
 */
describe('a PostgreSQL password is never shown', () => {
  const IN_URL = 'Url-pw-of-test-3071';
  const IN_ENV = 'Env-pw-of-test-5813';

  it('a store at a closed port: log lines, /ready, /metrics and the errors hold neither password', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as { port: number };
    await new Promise((r) => closed.close(r));

    const lines: string[] = [];
    const previous = process.env.PGPASSWORD;
    process.env.PGPASSWORD = IN_ENV;
    redirectLogLines((line) => lines.push(line));
    const metrics = await startMetricsServer(0, readiness, '127.0.0.1');
    const stop = new AbortController();
    try {
      const shown: string[] = [];
      const opening = PostgresTable.open(
        PREDICTIONS_SPEC,
        `postgres://cc@127.0.0.1:${port}/cc?sslmode=require`,
        {
          signal: stop.signal,
        },
      ).catch((e: unknown) => e);
      await waitFor(
        'the log to say PostgreSQL is unavailable',
        () => lines.join('\n'),
        (t) => t.includes('postgresql is unavailable'),
      );
      const ready = await fetch(`http://127.0.0.1:${metrics.port}/ready`);
      shown.push(await ready.text());
      assert.equal(ready.status, 503);
      shown.push(await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`)).text());
      stop.abort();
      const err = (await settlesWithin(opening, 10_000, 'the stop to end the wait')) as Error;
      shown.push(err.message, String(err.stack));

      const withUrlPassword = await settlesWithin(
        PostgresFeatureStore.open(`postgres://cc:${IN_URL}@127.0.0.1:${port}/cc`, { giveUpAfterMs: 0 }).catch(
          (e: unknown) => e,
        ),
        10_000,
        'the store to give up',
      );
      const gaveUp = withUrlPassword as Error;
      shown.push(gaveUp.message, String(gaveUp.stack), ...lines);
      const all = shown.join('\n');
      assert.match(all, /ECONNREFUSED/, 'the reason is given');
      for (const pw of [IN_URL, IN_ENV]) assert.ok(!all.includes(pw), `${pw} shown in:\n${all}`);
    } finally {
      stop.abort();
      redirectLogLines(undefined);
      await metrics.close();
      if (previous === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = previous;
    }
  });
});
