/**
 * The errors a user or an operator meets, in one catalogue (like Fastify's `FST_ERR_*`): each has a stable code
 * (tests and scripts match on it, never on the wording), the exit status the CLI ends with, and a hint that says
 * what to do. The CLI prints `cryptocast: <message>` and the hint, without a stack trace.
 *
 * Exit statuses: 2 = the command was called wrongly or its input is unusable (the user can fix it); 1 = a component
 * failed (a store, the registry, the trainer); 130 = a command with an end (a replay, `train`, `data fetch`, `backfill`, `candles`,
 * `features --output`)
 * stopped by SIGINT/SIGTERM before it (INTERRUPTED); 141 = the reader of stdout went away (`| head`), ended quietly as
 * a shell reports a SIGPIPE (src/cli/main.ts). A command that runs until it is stopped (`service`, `api`, `monitor`,
 * `run --source live`, `run --serve` once its replay is done) ends with 0 on a signal: that is its normal end.
 */
export class CryptocastError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(
    code: string,
    message: string,
    opts: { exitCode?: number; hint?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.exitCode = opts.exitCode ?? 2;
    this.hint = opts.hint;
  }
}

/** An entry of the catalogue: a code, an exit status and a default hint. */
export interface ErrorKind {
  readonly code: string;
  readonly exitCode: number;
  readonly hint?: string;
}

const kind = (code: string, exitCode: number, hint?: string): ErrorKind => ({ code, exitCode, hint });

/** The catalogue. Add a kind here rather than throwing a bare Error at a user. */
export const ERR = {
  /**
   * A flag or argument is missing, malformed or out of range: on the command line, whatever the flag (src/cli/flags.ts
   * `checkFlagValues`; commander's own refusals).
   */
  USAGE: kind('CC_ERR_USAGE', 2, 'run the command with --help for its flags'),
  /**
   * A setting is invalid: a CRYPTOCAST_* variable (also one a flag falls back to), a rules or config file, or a value
   * well formed but unusable where it is used (a port another process holds, a bus URL the transport refuses).
   */
  CONFIG: kind('CC_ERR_CONFIG', 2),
  /** An input file is missing, unreadable, or not of a format the command reads. */
  INPUT: kind('CC_ERR_INPUT', 2),
  /** An output file would overwrite an input, or cannot be written. */
  OUTPUT: kind('CC_ERR_OUTPUT', 2),
  /** A store URL names no known backend, or its path cannot be used. */
  STORE_URL: kind('CC_ERR_STORE_URL', 2, 'use duckdb:PATH (embedded) or postgres://user@host:port/db'),
  /** The embedded store's file is held by another process. */
  STORE_LOCKED: kind(
    'CC_ERR_STORE_LOCKED',
    2,
    'DuckDB lets one process write a file: stop the other process, give this one its own file ' +
      '(--store duckdb:.data/other.duckdb), or use PostgreSQL for several processes',
  ),
  /** A file another cryptocast process is writing (a backfill's state and output). */
  FILE_IN_USE: kind('CC_ERR_FILE_IN_USE', 2),
  /** The store failed while reading or writing. */
  STORE: kind('CC_ERR_STORE', 1),
  /**
   * A PostgreSQL store's TLS cannot be set up: its certificate is not trusted (another CA, self-signed), not issued for
   * the host, or the server does not speak TLS. Waiting does not mend it.
   */
  STORE_TLS: kind(
    'CC_ERR_STORE_TLS',
    2,
    "give the CA that signed the server's certificate (PGSSLROOTCERT or ?sslrootcert=FILE; a managed service publishes its CA bundle) and the host name the certificate names, or choose another sslmode (PGSSLMODE)",
  ),
  /** A PostgreSQL store refused the credentials (a wrong password). */
  STORE_AUTH: kind(
    'CC_ERR_STORE_AUTH',
    2,
    "check the password: PGPASSWORD (from its Secret in a deployment), or the store URL's",
  ),
  /** A dataset cannot be built or is too small for what was asked. */
  DATASET: kind('CC_ERR_DATASET', 2),
  /** Walk-forward folds cannot be laid out on the data. */
  FOLDS: kind('CC_ERR_FOLDS', 2),
  /** The model registry failed or refused. */
  REGISTRY: kind('CC_ERR_REGISTRY', 1),
  /** The Python trainer failed. */
  TRAINER: kind('CC_ERR_TRAINER', 1),
  /** A model file cannot be loaded or evaluated. */
  MODEL: kind('CC_ERR_MODEL', 1),
  /** Stopped by SIGINT/SIGTERM before it finished: nothing half-done is kept (exit 130, as a shell reports Ctrl-C). */
  INTERRUPTED: kind('CC_ERR_INTERRUPTED', 130, 'run the same command again'),
  /** A download failed (HTTP error, connection lost, no network) after its retries. */
  DOWNLOAD: kind(
    'CC_ERR_DOWNLOAD',
    1,
    'run the same command again: finished files are kept and not downloaded twice',
  ),
  /** A downloaded file does not match its published checksum, twice. */
  CHECKSUM: kind(
    'CC_ERR_CHECKSUM',
    1,
    'the archive may be changing or a proxy altering files: try again later',
  ),
  /** A registered model was not trained for this data (another pair or horizon): `backtest` refuses it. */
  MODEL_MISMATCH: kind(
    'CC_ERR_MODEL_MISMATCH',
    2,
    'say which trained pair the candles stand for with --as-pair (e.g. a USD market as USDT)',
  ),
  /** Kafka refused to create or check the topics (`cryptocast topics create`). */
  TOPICS: kind(
    'CC_ERR_TOPICS',
    1,
    'check the broker address, that the replication factor is at most the number of brokers, and that existing ' +
      'topics have the partition counts of `cryptocast topics list`',
  ),
  /** A registered model has no such version or alias (or no champion to roll back). */
  MODEL_VERSION: kind('CC_ERR_MODEL_VERSION', 2, 'cryptocast models list shows the versions and aliases'),
  /** A promotion the one hard rule refuses: a model no better than persistence never becomes champion. */
  PROMOTION: kind(
    'CC_ERR_PROMOTION',
    2,
    'promote a version with skill > 0 on every pair (cryptocast models list)',
  ),
  /** A promotion refused because the predictor cannot load the version (columns it lacks, damaged or missing files). */
  UNSERVABLE: kind(
    'CC_ERR_UNSERVABLE',
    2,
    'the predictor serves models on technical features with intact model.json, p10.json and p90.json: promote ' +
      'another version (cryptocast models list) or retrain',
  ),
  /** A pair that is not written as one, or that an exchange endpoint has no symbol for. */
  PAIR: kind('CC_ERR_PAIR', 2, 'write a pair as BASE/QUOTE in upper case, e.g. BTC/USD'),
  /** An exchange or another remote service refused, failed after its retries, or answered something unexpected. */
  UPSTREAM: kind(
    'CC_ERR_UPSTREAM',
    1,
    'the remote service failed or changed: try again later; if it persists, check its status and API notes',
  ),
  /** The message bus (Kafka) did not answer within the command's timeout. */
  BUS: kind(
    'CC_ERR_BUS',
    1,
    'check the broker address (--bus or CRYPTOCAST_BUS) and that Kafka is up, or allow longer with --timeout',
  ),
  /**
   * Kafka refused the SASL credentials (a wrong password, a user without credentials for that mechanism) or the
   * mechanism itself: waiting does not mend it, so a service ends with it instead of retrying for ever.
   */
  BUS_AUTH: kind(
    'CC_ERR_BUS_AUTH',
    2,
    'check CRYPTOCAST_KAFKA_SASL_USERNAME, CRYPTOCAST_KAFKA_SASL_PASSWORD and CRYPTOCAST_KAFKA_SASL_MECHANISM: SCRAM ' +
      'credentials are per mechanism (a user made for SCRAM-SHA-512 cannot log in with SCRAM-SHA-256), and the ' +
      'listener must offer the mechanism',
  ),
  /**
   * TLS to Kafka cannot work as configured: the listener wants TLS and the client speaks plain (or the reverse), or
   * the broker's certificate is not trusted or not for its host name.
   */
  BUS_TLS: kind(
    'CC_ERR_BUS_TLS',
    2,
    'CRYPTOCAST_KAFKA_TLS=true for a TLS listener (false for a plain one); CRYPTOCAST_KAFKA_CA_FILE: the CA that ' +
      "signed the brokers' certificates (none: the system's CAs); the bus URL must name the brokers as their " +
      'certificates do',
  ),
  /** A backfill's resume state file that cannot be used for this run. */
  STATE_FILE: kind(
    'CC_ERR_STATE_FILE',
    2,
    'remove the state file to start over, or give another with --state',
  ),
  /** The store holds a feature set version with other columns than the code defines. */
  FEATURE_SET: kind(
    'CC_ERR_FEATURE_SET',
    2,
    'a feature set version is a contract: bump the version in the code when its columns change, or use a new store',
  ),
} as const;

export type ErrorCode = (typeof ERR)[keyof typeof ERR]['code'];

/** Throws-ready error of a catalogue kind: `throw fail(ERR.INPUT, 'not a zip: x.zip')`. */
export function fail(
  k: ErrorKind,
  message: string,
  opts: { hint?: string; cause?: unknown } = {},
): CryptocastError {
  return new CryptocastError(k.code, message, {
    exitCode: k.exitCode,
    hint: opts.hint ?? k.hint,
    cause: opts.cause,
  });
}

/**
 * `err` as a catalogued error: itself when it already is one (its code and exit status kept), else `kind` with the
 * same message. For the places that hand on what a lower layer threw (a backend that cannot be built, a file that
 * cannot be read).
 */
export function catalogued(err: unknown, k: ErrorKind): CryptocastError {
  if (err instanceof CryptocastError) return err;
  return fail(k, err instanceof Error ? err.message : String(err), { cause: err });
}

/** A mistake in how a command was called (bad flag, missing file): printed without a stack trace, exit 2. */
export class UsageError extends CryptocastError {
  override readonly name = 'UsageError';
  constructor(message: string, hint?: string) {
    super(ERR.USAGE.code, message, { exitCode: 2, hint });
  }
}
