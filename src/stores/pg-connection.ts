import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { parse, toClientConfig } from 'pg-connection-string';
import { secret, setting } from '../config/env.ts';
import { permanentPostgresError } from '../core/dependency.ts';
import { CryptocastError, ERR, fail } from '../core/errors.ts';

/**
 * How a PostgreSQL store connects: the URL's host, database and parameters, the password, and TLS.
 *
 * TLS follows libpq's `sslmode`, as managed services document it (RDS, Cloud SQL, Azure): `disable`; `require`
 * (encrypted, the certificate not checked — checked against the CA when one is given, as libpq does); `verify-ca` (the
 * certificate signed by the given CA); `verify-full` (and issued for the host connected to; without a CA file, the
 * system's CAs). The URL's `sslmode` and `sslrootcert` win over PGSSLMODE and PGSSLROOTCERT. node-postgres's own
 * reading of the URL took `require` and `verify-ca` as `verify-full` against the system's CAs (a managed server with
 * its own CA was refused for `require`, and node warned on every process) and read PGSSLMODE behind config/env.ts.
 *
 * The password is the URL's, or PGPASSWORD: a URL without secrets can sit in a ConfigMap, the password in a Secret.
 */

export const PG_SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type PgSslMode = (typeof PG_SSL_MODES)[number];

/** The URL's parameters that this module reads itself (pg-connection-string would read them its own way). */
const TLS_PARAMETERS = ['sslmode', 'sslrootcert', 'ssl', 'uselibpqcompat'];

/** The connection settings of `url` (node-postgres's client config, without pool settings). */
export function pgConnectionConfig(url: string, env: NodeJS.ProcessEnv = process.env): pg.ClientConfig {
  const { rest, params } = splitQuery(url);
  const mode = sslModeOf(params.get('sslmode') ?? legacySsl(params.get('ssl')), env);
  const caFile = params.get('sslrootcert') ?? setting('PGSSLROOTCERT', env);
  for (const p of TLS_PARAMETERS) params.delete(p);
  const query = params.toString();
  const {
    password: inUrl,
    ssl: clientCertificate, // the URL's sslcert and sslkey, read by pg-connection-string, if any
    ...config
  } = toClientConfig(parse(query ? `${rest}?${query}` : rest)) as pg.ClientConfig;
  const password = inUrl || secret('PGPASSWORD', env);
  const tls = tlsOptions(mode, caFile);
  return {
    ...config,
    ...(password ? { password } : {}),
    ssl: tls && typeof clientCertificate === 'object' ? { ...clientCertificate, ...tls } : tls,
  };
}

/**
 * node-postgres's own `?ssl=true` (or `1`) meant verify-full against the system's CAs, and `0`/`false` no TLS: kept so,
 * rather than dropped (a URL that asked for TLS must not connect in plain text).
 */
function legacySsl(ssl: string | null): string | undefined {
  if (ssl === null) return undefined;
  if (ssl === 'true' || ssl === '1') return 'verify-full';
  if (ssl === 'false' || ssl === '0') return 'disable';
  return ssl; // refused by sslModeOf, named as given
}

/** Where `url` points, to name it in a message: host and port, never the user info. */
export function pgTarget(config: pg.ClientConfig): string {
  return `${config.host ?? 'localhost'}:${config.port ?? 5432}`;
}

function splitQuery(url: string): { rest: string; params: URLSearchParams } {
  // After the user info: a password may hold a `?` (the URL parser ends the user info at the last `@`).
  const at = url.indexOf('?', url.lastIndexOf('@') + 1);
  return at < 0
    ? { rest: url, params: new URLSearchParams() }
    : { rest: url.slice(0, at), params: new URLSearchParams(url.slice(at + 1)) };
}

function sslModeOf(fromUrl: string | undefined, env: NodeJS.ProcessEnv): PgSslMode {
  if (fromUrl === undefined) return setting('PGSSLMODE', env) ?? 'disable';
  if ((PG_SSL_MODES as readonly string[]).includes(fromUrl)) return fromUrl as PgSslMode;
  throw fail(
    ERR.CONFIG,
    `the store URL's sslmode must be disable, require, verify-ca or verify-full, got "${fromUrl}"`,
    { hint: fromUrl === 'prefer' || fromUrl === 'allow' ? NO_FALLBACK : undefined },
  );
}

/**
 * Why libpq's `prefer` (its default) and `allow` are refused rather than honoured: they fall back to plain text when
 * the server has no TLS (prefer) or accepts plain text (allow), so they protect from nothing an attacker on the path
 * cannot strip (libpq's own table: MITM protection "No", eavesdropping "Maybe"), and node-postgres cannot fall back
 * within a connection (a pool would have to decide once for all its connections). A URL copied with `prefer` is most
 * often a default nobody chose: the hint says which mode gives what it would have given.
 */
export const NO_FALLBACK =
  'prefer and allow (libpq’s fall-backs to plain text) are not supported: a connection is encrypted or not. ' +
  'For a server with TLS (every managed PostgreSQL), verify-full with its CA (sslrootcert or PGSSLROOTCERT), or require ' +
  '(encrypted, not verified: what prefer gave); for a server without TLS on a trusted network, disable';

function tlsOptions(mode: PgSslMode, caFile: string | undefined): false | ConnectionOptions {
  if (mode === 'disable') return false;
  const ca = caFile === undefined ? undefined : readCa(caFile);
  // Chain verified, host name not: what libpq's verify-ca (and require with a CA) checks.
  const anyHost = () => undefined;
  if (mode === 'require') return ca ? { ca, checkServerIdentity: anyHost } : { rejectUnauthorized: false };
  if (mode === 'verify-ca') {
    if (!ca)
      throw fail(ERR.CONFIG, 'sslmode verify-ca needs the CA certificate to verify against', {
        hint: 'set PGSSLROOTCERT (or ?sslrootcert=FILE in the store URL) to the CA file, PEM',
      });
    return { ca, checkServerIdentity: anyHost };
  }
  return ca ? { ca } : {};
}

function readCa(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(ERR.CONFIG, `the PostgreSQL CA file ${file} cannot be read: ${(err as Error).message}`, {
      hint: 'PGSSLROOTCERT (or the store URL’s sslrootcert) names a PEM file the process can read',
    });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw fail(ERR.CONFIG, `the PostgreSQL CA file ${file} holds no PEM certificate`, {
      hint: 'PGSSLROOTCERT (or the store URL’s sslrootcert) names the CA certificate, PEM (-----BEGIN CERTIFICATE-----)',
    });
  return pem;
}

/** OpenSSL's codes for a certificate chain that does not lead to a trusted CA (or has lapsed). */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/**
 * A failure to connect that waiting does not mend, as a catalogued error naming its cause (not the driver's words
 * alone, nor a stack): the server's certificate not trusted or not for this host, a server without TLS, a refused
 * password. Anything else is returned as it is (waited for: a server down, starting, a timeout).
 */
export function pgConnectError(err: unknown, config: pg.ClientConfig): unknown {
  if (err instanceof CryptocastError) return err;
  const code = (err as { code?: string }).code;
  const message = (err as Error).message ?? String(err);
  const at = `PostgreSQL at ${pgTarget(config)}`;
  if (code !== undefined && UNTRUSTED.has(code))
    return fail(ERR.STORE_TLS, `${at}: the server's certificate is not trusted (${code}: ${message})`, {
      cause: err,
    });
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return fail(ERR.STORE_TLS, `${at}: the server's certificate is not issued for this host (${message})`, {
      hint: 'connect by a name the certificate holds, or use sslmode verify-ca (the CA checked, not the host name)',
      cause: err,
    });
  if (/does not support SSL/i.test(message))
    return fail(ERR.STORE_TLS, `${at}: the server does not accept TLS connections`, {
      hint: 'turn ssl on in the server, or connect with sslmode disable where plain text is acceptable',
      cause: err,
    });
  if (code === '28P01')
    return fail(ERR.STORE_AUTH, `${at}: the password was refused (${message})`, { cause: err });
  return err;
}

/**
 * Whether `err` is the server refusing a plain connection for want of a pg_hba.conf line ("no pg_hba.conf entry for
 * host …, no encryption"), which a server admitting TLS only from this client (a managed one: `hostssl` lines) says,
 * but so does one with no line for this host, user or database yet (provisioned after: waited for). `plainRefusal`
 * tells them apart.
 */
function refusedInPlainText(err: unknown): boolean {
  return (err as { code?: string }).code === '28000' && /no encryption/i.test((err as Error).message ?? '');
}

/**
 * A plain connection refused by pg_hba.conf (`refusedInPlainText`), named when the server does admit this client over
 * TLS: CC_ERR_STORE_TLS (libpq's default, prefer, would have tried TLS, so a store URL without sslmode meets a
 * TLS-only server; it was waited for as an outage, for ever). Asked with a TLS connection that sends no password (an
 * empty one) and verifies nothing: the server's answer past pg_hba (a password request, or refused for the password)
 * is all it takes. Any other answer (no line for this host over TLS either, no TLS, no answer): `err` as it is, waited
 * for as the provisioning of the server may still come.
 */
export async function plainRefusal(err: unknown, config: pg.ClientConfig): Promise<unknown> {
  if (!refusedInPlainText(err) || config.ssl) return err;
  const probe = new pg.Client({
    host: config.host,
    port: config.port,
    user: config.user,
    database: config.database,
    password: '',
    ssl: { rejectUnauthorized: false },
    connectionTimeoutMillis: 5_000,
  });
  probe.on('error', () => {});
  let admitted = false;
  try {
    await probe.connect();
    admitted = true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    // Past pg_hba: the password refused (28P01), or asked for and not given (the client's own SASL/password errors).
    admitted = code === '28P01' || (code === undefined && /password/i.test((e as Error).message ?? ''));
  } finally {
    await probe.end().catch(() => {});
  }
  if (!admitted) return err;
  return fail(
    ERR.STORE_TLS,
    `PostgreSQL at ${pgTarget(config)}: the server accepts TLS connections only from here, and this one is plain (sslmode disable)`,
    {
      hint: 'set sslmode=verify-full (with its CA: sslrootcert or PGSSLROOTCERT) or require, in the store URL or PGSSLMODE',
      cause: err,
    },
  );
}

/** What waiting does not mend: `permanentPostgresError`'s, and whatever `pgConnectError` names. */
export function permanentPgError(err: unknown, config: pg.ClientConfig): boolean {
  return permanentPostgresError(err) || pgConnectError(err, config) instanceof CryptocastError;
}
