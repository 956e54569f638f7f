/**
 * The errors a user or an operator meets, in one catalogue (like Fastify's `FST_ERR_*`): each has a stable code
 * (tests and scripts match on it, never on the wording), the exit status the CLI ends with, and a hint that says
 * what to do. The CLI prints `cryptocast: <message>` and the hint, without a stack trace.
 *
 * Exit statuses: 2 = the command was called wrongly or its input is unusable (the user can fix it); 1 = a component
 * failed (a store, the registry, the trainer).
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
  /** A flag or argument is missing, malformed or out of range. */
  USAGE: kind('CC_ERR_USAGE', 2, 'run the command with --help for its flags'),
  /** A setting from a flag or the environment is invalid. */
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

/** A mistake in how a command was called (bad flag, missing file): printed without a stack trace, exit 2. */
export class UsageError extends CryptocastError {
  override readonly name = 'UsageError';
  constructor(message: string, hint?: string) {
    super(ERR.USAGE.code, message, { exitCode: 2, hint });
  }
}
