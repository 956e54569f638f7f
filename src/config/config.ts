import { z } from 'zod';
import { CryptocastError, ERR, fail } from '../core/errors.ts';
import { DEFAULT_MAX_PRICE_FACTOR } from '../core/price-guard.ts';
import { urlWithoutCredentials } from '../core/secrets.ts';
import { normalisePair } from '../ingestion/symbols.ts';
import { IntervalSchema } from '../schemas/candle.ts';
import { Pair } from '../schemas/common.ts';

/**
 * Configuration: every setting comes from a CLI flag or, failing that, an environment variable, then a
 * default. It is validated in one place and a bad value fails fast with the setting's name, its source and
 * what was expected. Secrets (API tokens) only ever come from the environment and are never logged.
 */
export class ConfigError extends CryptocastError {
  override readonly name = 'ConfigError';
  constructor(message: string) {
    super(ERR.CONFIG.code, message, { exitCode: ERR.CONFIG.exitCode });
  }
}

/**
 * Parses durations such as `5s`, `500ms`, `2m`, `1h`, `7d`. The unit is required: a bare `5` was once taken as
 * milliseconds, so `--grace 5` meant 5 ms where 5 s was meant. `name` (a flag) starts the message when given.
 */
export function parseDuration(text: string, name?: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  const what = name === undefined ? '' : `${name}: `;
  if (m === null) throw new ConfigError(`${what}not a duration: "${text}" (use e.g. 500ms, 5s, 2m, 1h, 7d)`);
  const unit = m[2];
  if (unit === undefined)
    throw new ConfigError(
      `${what}"${text.trim()}" has no unit: write e.g. ${m[1]}s or ${m[1]}ms (units: ms, s, m, h, d)`,
    );
  const ms = Math.round(Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!);
  // 400 digits and a unit were Infinity milliseconds, taken as a duration.
  if (!Number.isSafeInteger(ms))
    throw new ConfigError(
      `${what}"${text.trim()}" is too long a duration (at most ${Number.MAX_SAFE_INTEGER} ms)`,
    );
  return ms;
}

const Duration = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

export const BusUrl = z
  .string()
  .regex(
    /^(memory|kafka:\/\/[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*)$/,
    'use "memory" or kafka://host:port[,host:port]',
  );

export const StreamConfigSchema = z.object({
  bus: BusUrl.default('memory'),
  interval: IntervalSchema.default('1m'),
  graceMs: Duration.default(5_000),
  latePolicy: z.enum(['dlq', 'revise']).default('dlq'),
  pairs: z.array(Pair).min(1).default(['BTC/USD', 'ETH/USD']),
  /** A trade or candle price this many times above or below the recent median is dead-lettered. */
  maxPriceFactor: z.coerce.number().gt(1).default(DEFAULT_MAX_PRICE_FACTOR),
});
export type StreamConfig = z.infer<typeof StreamConfigSchema>;

/**
 * Why `text` is no value of the stream setting `key` — its schema above decides: a range (a price factor above 1 and
 * finite), a pattern (a bus URL) — or undefined. The CLI checks the settings' flags with it as commander reads them
 * (src/cli/flags.ts), where it is known whether a value came from the flag or from its variable: out of range on the
 * command line is CC_ERR_USAGE naming the flag, from the variable CC_ERR_CONFIG naming the variable. loadStreamConfig,
 * given the value later, answered CC_ERR_CONFIG for both.
 */
export function streamSettingProblem(
  key: 'bus' | 'graceMs' | 'maxPriceFactor',
  text: string,
): string | undefined {
  const r = StreamConfigSchema.shape[key].safeParse(text);
  return r.success ? undefined : (r.error.issues[0]?.message ?? 'not a valid value');
}

/** Maps each setting to its environment variable. */
export const ENV = {
  bus: 'CRYPTOCAST_BUS',
  interval: 'CRYPTOCAST_INTERVAL',
  graceMs: 'CRYPTOCAST_GRACE',
  latePolicy: 'CRYPTOCAST_LATE_POLICY',
  pairs: 'CRYPTOCAST_PAIRS',
  maxPriceFactor: 'CRYPTOCAST_MAX_PRICE_FACTOR',
} as const;

/** Builds a validated config from flags (which win) and the environment. */
export function loadStreamConfig(
  flags: Partial<Record<keyof typeof ENV, string | string[] | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): StreamConfig {
  return validated(StreamConfigSchema, Object.keys(ENV) as (keyof typeof ENV)[], flags, env);
}

/**
 * One stream setting from its flag or environment variable, validated as `loadStreamConfig` validates it, for a
 * command that uses only that one (`candles --max-price-factor`) and must not fail on the stream's other settings.
 */
export function loadStreamSetting<K extends keyof typeof ENV>(
  key: K,
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): StreamConfig[K] {
  const schema = z.object({ [key]: StreamConfigSchema.shape[key] }) as unknown as z.ZodType<
    Pick<StreamConfig, K>
  >;
  return validated(schema, [key], { [key]: flag } as Partial<Record<K, string>>, env)[key];
}

function validated<S extends z.ZodType, K extends keyof typeof ENV>(
  schema: S,
  keys: readonly K[],
  flags: Partial<Record<K, string | string[] | undefined>>,
  env: NodeJS.ProcessEnv,
): z.infer<S> {
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  for (const k of keys) {
    const envName = ENV[k];
    const flag = flags[k];
    const value = flag ?? env[envName];
    if (value === undefined || value === '') continue;
    // Commander hands a flag's environment variable over as the flag: name both when they agree.
    origin[k] =
      flag === undefined
        ? `environment ${envName}`
        : flag === env[envName]
          ? `flag --${kebab(k)} (or environment ${envName})`
          : `flag --${kebab(k)}`;
    raw[k] =
      k === 'pairs' && typeof value === 'string'
        ? // Spelled as every --pair is (BTC/USD, btc-usd, BTCUSDT, XBTUSD); what is not a pair is refused below.
          [
            ...new Set(
              value.split(',').map((s) => normalisePair(s) ?? s.trim().toUpperCase().replace('-', '/')),
            ),
          ]
        : value;
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const k = String(i.path[0] ?? '');
      // A URL is quoted without its user info (a bus URL with a password: `kafka://user:pa/ss@host` fails the check,
      // and the password, cut by its `/`, would escape the logs' line-wide URL redaction).
      const got = typeof raw[k] === 'string' ? urlWithoutCredentials(raw[k]) : raw[k];
      return `${origin[k] ?? k}: ${i.message} (got ${JSON.stringify(got)})`;
    });
    // One bad setting: one line. Several: one line each under a heading.
    const message =
      lines.length === 1
        ? `invalid configuration: ${lines[0]}`
        : `invalid configuration:\n${lines.map((l) => `  ${l}`).join('\n')}`;
    // A pair that is not one has the code it has in every other command (--pair of candles, features, backfill…).
    if (r.error.issues.every((i) => i.path[0] === 'pairs')) throw fail(ERR.PAIR, message);
    throw new ConfigError(message);
  }
  return r.data;
}

function kebab(s: string): string {
  return s.replace(/Ms$/, '').replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
