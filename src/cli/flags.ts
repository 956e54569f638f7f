import { type Command, InvalidArgumentError } from 'commander';
import { parseDuration, streamSettingProblem } from '../config/config.ts';
import { setting } from '../config/env.ts';
import { UsageError } from '../core/errors.ts';
import { MAX_TIMER_MS } from '../core/timer-limit.ts';
import { busUrlProblem } from '../runtime/bus-url.ts';
import { MODEL_NAME } from '../training/registry/registry.ts';

/** Flag values shared by several commands, checked before anything starts. */

/** A TCP port: a whole number 0–65535 (0: any free port). */
export function parsePort(text: string, flag = '--port'): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new UsageError(`${flag} must be a TCP port from 0 to 65535 (0: any free port), got "${text}"`);
  return port;
}

/** The API's port: `--port`, else CRYPTOCAST_API_PORT, else 8080 (what `service api` listens on). */
export function apiPort(flag: string | undefined): number {
  return parsePort(flag ?? setting('CRYPTOCAST_API_PORT') ?? '8080');
}

/**
 * A positive duration flag: `90s`, `2m`, `500ms`, with its unit as every duration of the CLI (parseDuration): a bare
 * number, once taken as seconds by some flags and as milliseconds by others, is refused (CC_ERR_USAGE, as commander
 * reads the flag: checkFlagValues).
 */
export function parsePositiveDuration(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text, flag);
  if (!(ms > 0)) throw new UsageError(`${flag} must be positive, got "${text}"`);
  return ms;
}

/**
 * A whole-number flag (`--folds`, `--tune-seconds`): digits only, at least `min`; else CC_ERR_USAGE naming the flag
 * (`flag` without its dashes). Number() alone took -1 and 1.5.
 */
export function wholeNumber(flag: string, text: string, min = 0): number {
  const v = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(v) || v < min)
    throw new UsageError(`--${flag} must be a whole number${min > 0 ? ` ≥ ${min}` : ''}, got "${text}"`);
  return v;
}

/**
 * The checks of a flag's value made as commander reads it, before any command runs. By the flag's name where its
 * value has a meaning of its own, else by the placeholder of its value in the help (`--folds <n>`: a number). Each
 * returns why a value is refused, or undefined; what a command checks further (a whole number, a range) it refuses as
 * CC_ERR_USAGE too.
 */
const numberValue = (t: string) =>
  t.trim() !== '' && Number.isFinite(Number(t)) ? undefined : 'it must be a number';
/** An index name prefix OpenSearch takes (`service index-sink --index-prefix`): lowercase, no leading `-`, `_`, `.`. */
export const INDEX_PREFIX = /^[a-z0-9][a-z0-9._-]*$/;
/**
 * Digits only, a number JavaScript holds exactly: 400 digits passed the digits check as Infinity (refused later, or
 * not at all).
 */
const wholeNumberText = (t: string) => /^\s*\d+\s*$/.test(t) && Number.isSafeInteger(Number(t));
/** Digits only, 1 or more (a count, a number of days). */
const wholeAtLeastOne = (t: string) => wholeNumberText(t) && Number(t) >= 1;
/** Why `text` is not an http(s) URL (an API, an archive, a feed), or undefined. */
function httpUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return `"${text.trim()}" is not a URL (e.g. https://host/path)`;
  }
  return url.protocol === 'http:' || url.protocol === 'https:'
    ? undefined
    : `"${text.trim()}" is not http(s)`;
}
const isPositiveFinite = (v: number) => Number.isFinite(v) && v > 0;
/**
 * A duration that becomes a timer's delay (`service predictor --poll`, `topics create --timeout`, `dlq … --timeout`):
 * at most MAX_TIMER_MS. `--poll 25d` went into setInterval, which fired every millisecond: the registry was polled
 * without a pause. (The trainer's `--every` waits in capped steps instead: TrainerService.)
 */
function timerDurationProblem(text: string): string | undefined {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    return (err as Error).message;
  }
  return ms > MAX_TIMER_MS
    ? `it must be at most 24d (${MAX_TIMER_MS} ms: a timer set longer fires at once)`
    : undefined;
}
const VALUE_CHECKS_BY_FLAG: Record<string, (text: string) => string | undefined> = {
  '--poll': timerDurationProblem,
  '--timeout': timerDurationProblem,
  // Finite: Infinity and 1e400 passed here and were refused only once the command ran (parseSpeed).
  '--speed': (t) =>
    t === 'max' || isPositiveFinite(Number(t.replace(/x$/i, '')))
      ? undefined
      : 'it must be "max" or a positive factor such as 1, 10, 60',
  // A window of whole days (train --store, service trainer), as the chart's trainer.days: 1.5 and 1e3 were taken.
  '--days': (t) => (wholeAtLeastOne(t) ? undefined : 'it must be a whole number of days, 1 or more'),
  // Checked by topics create only once it ran, where a 0 from CRYPTOCAST_KAFKA_REPLICATION_FACTOR was reported as the
  // flag (CC_ERR_USAGE): here a value from the variable is the variable's (CC_ERR_CONFIG).
  '--replication-factor': (t) => (wholeAtLeastOne(t) ? undefined : 'it must be a whole number, 1 or more'),
  // The stream's settings (src/config/config.ts) as their schema takes them, beyond the form checked first: a bus URL
  // the schema's pattern refuses (kafka://host:9/), a price factor out of range (Infinity, 1e400). They were refused
  // later by loadStreamConfig, CC_ERR_CONFIG even from the flag. (--pairs keeps CC_ERR_PAIR, the code of every --pair;
  // the interval and the late policy are choices.)
  '--bus': (t) => busUrlProblem(t) ?? streamSettingProblem('bus', t),
  '--grace': (t) => streamSettingProblem('graceMs', t),
  // Checked by the command only once it ran, where CRYPTOCAST_INDEX_PREFIX=Bad was reported as the flag (CC_ERR_USAGE).
  '--index-prefix': (t) =>
    INDEX_PREFIX.test(t)
      ? undefined
      : 'an index name prefix: lowercase letters, digits, ".", "_" or "-" (not first)',
  // A model name the registries take: one they refuse was CC_ERR_REGISTRY (exit 1, a component failing) once the
  // command opened its registry, from the flag as from CRYPTOCAST_MODEL_NAME.
  '--name': (t) =>
    MODEL_NAME.test(t)
      ? undefined
      : 'a model name: a letter or digit, then letters, digits, ".", "_" or "-" (100 at most)',
  '--base-url': httpUrlProblem,
  // No user info (credentials come from CRYPTOCAST_OPENSEARCH_USERNAME/PASSWORD): the command refused it only once it
  // ran, as the flag (CC_ERR_USAGE) even when it came from CRYPTOCAST_OPENSEARCH_URL. Commander's message quotes the
  // value, and main.ts redacts the password from it.
  '--opensearch-url': (t) => {
    const why = httpUrlProblem(t);
    if (why !== undefined) return why;
    const url = new URL(t.trim());
    return url.username || url.password
      ? 'no credentials in the URL: set CRYPTOCAST_OPENSEARCH_USERNAME and CRYPTOCAST_OPENSEARCH_PASSWORD'
      : undefined;
  },
  // Comma separated: every one a URL (one that was not crashed `service news` with a TypeError, or was polled by run).
  '--feeds': (t) =>
    t
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean)
      .map(httpUrlProblem)
      .find((why) => why !== undefined),
  '--max-price-factor': (t) =>
    streamSettingProblem('maxPriceFactor', t) === undefined
      ? undefined
      : 'it must be a finite factor above 1 of the recent median price, e.g. 10',
};
const VALUE_CHECKS_BY_PLACEHOLDER: Record<string, (text: string) => string | undefined> = {
  '<duration>': (t) => {
    try {
      parseDuration(t);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  '<port>': (t) =>
    /^\d+$/.test(t.trim()) && Number(t) <= 65_535
      ? undefined
      : 'it must be a TCP port from 0 to 65535 (0: any free port)',
  '<n>': (t) => (wholeNumberText(t) ? undefined : 'it must be a whole number (0, 1, 2…)'),
  '<x>': numberValue,
  '<p>': numberValue,
  '<g>': numberValue,
  '<s>': numberValue,
};

/**
 * One rule for a malformed flag value, whatever the flag and the command: refused as commander refuses a value not
 * among a flag's choices, before the command starts — on the command line CC_ERR_USAGE, the message naming the flag;
 * from the environment variable the flag falls back to CC_ERR_CONFIG, naming the variable (main.ts tells them apart).
 * Before, `run --speed fast` was CC_ERR_USAGE and `run --news-max-lag soon` CC_ERR_CONFIG, a bad port from
 * CRYPTOCAST_METRICS_PORT was reported as the flag, and a command might open a store before it read a bad flag.
 * Applied to `cmd` and every subcommand, after they are all declared. Values are left as they are (strings): the
 * commands convert them.
 */
export function checkFlagValues(cmd: Command): void {
  for (const option of cmd.options) {
    const placeholder = /<[^>]+>/.exec(option.flags)?.[0];
    const check =
      (option.long && VALUE_CHECKS_BY_FLAG[option.long]) ??
      (placeholder && VALUE_CHECKS_BY_PLACEHOLDER[placeholder]);
    // A flag with choices (`--period <p>`: auto, daily, monthly) is checked by commander against them.
    if (!check || option.argChoices !== undefined) continue;
    const parse = option.parseArg;
    option.argParser((value: string, previous: unknown) => {
      // An empty value is no value (an environment variable set to ""), as the settings read it.
      const why = value.trim() === '' ? undefined : check(value);
      if (why !== undefined) throw new InvalidArgumentError(why);
      return parse ? parse(value, previous) : value;
    });
  }
  for (const sub of cmd.commands) checkFlagValues(sub);
}

/** A URL whose user info holds a password (`scheme://user:password@host`); one with a user alone is not. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^\s@]*:[^\s]*@/i;

/**
 * Refuses a password given as a command-line flag (`--store postgres://u:PASSWORD@…`, `--registry mlflow+http://…`):
 * an argument is readable by every user of the machine (`ps`, /proc/PID/cmdline) while the process runs, and stays in
 * the shell's history. The same URL from the flag's environment variable is taken (commander says where a value came
 * from), as is the password alone in the variable its client reads. The password itself is not quoted.
 */
export function refuseCredentialsInFlags(command: {
  options: readonly { attributeName(): string; long?: string; envVar?: string }[];
  getOptionValue(key: string): unknown;
  getOptionValueSource(key: string): string | undefined;
}): void {
  for (const option of command.options) {
    const key = option.attributeName();
    const value = command.getOptionValue(key);
    if (typeof value !== 'string' || command.getOptionValueSource(key) !== 'cli') continue;
    if (!URL_WITH_PASSWORD.test(value)) continue;
    const instead = [
      ...(option.envVar ? [`the whole URL in ${option.envVar}`] : []),
      'the password alone in PGPASSWORD (PostgreSQL) or MLFLOW_TRACKING_PASSWORD (MLflow)',
    ].join(', or ');
    throw new UsageError(
      `${option.long}: no password on the command line (every user of the machine sees it in ps, and the shell history keeps it)`,
      `put ${instead}, from a secret`,
    );
  }
}
