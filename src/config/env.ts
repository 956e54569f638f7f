import { isIP } from 'node:net';
import { z } from 'zod';
import { CryptocastError, ERR } from '../core/errors.ts';
import { MAX_TIMER_MS } from '../core/timer-limit.ts';

/**
 * Every environment variable cryptocast reads, in one table: what it means, its default, and how it is checked.
 * Modules read the environment only through `setting` (and `secret` for credentials), so a variable cannot be
 * read without being listed here, a bad value fails with the variable's name and what was expected (exit 2), and
 * the secrets are one list: `core/secrets.ts` removes their values from every log line, and no error here quotes
 * a secret's value. Flags that fall back to a variable (commander's `.env(...)`) are listed too.
 *
 * An empty variable counts as unset. `NODE_ENV` and `npm_package_version` are Node's and npm's, read where used.
 */
export interface Variable {
  readonly meaning: string;
  /** The default, as the README shows it (the value itself lives with the code that applies it). */
  readonly default: string;
  readonly schema: z.ZodType;
  /** A credential: read with `secret()`, redacted from every log line. */
  readonly secret?: boolean;
}

const text = z.string();
const positive = z.coerce.number({ error: 'a positive number' }).positive({ error: 'a positive number' });
const positiveInt = z.coerce
  .number({ error: 'a positive integer' })
  .int({ error: 'a positive integer' })
  .positive({ error: 'a positive integer' });
/** A timer's delay in ms: positive, and at most what a timer honours (a longer one fires at once). */
const timerMs = positive.max(MAX_TIMER_MS, { error: `at most ${MAX_TIMER_MS} (ms)` });
const nonNegative = z.coerce.number({ error: 'a number ≥ 0' }).nonnegative({ error: 'a number ≥ 0' });
const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

/** An address or a CIDR block (`10.0.0.0/8`, `fd00::/8`), or a name of proxy-addr's ranges. */
function isTrustedProxy(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address = '', bits, ...more] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || more.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
/**
 * Which peers may say who the client is (X-Forwarded-For), as Fastify's `trustProxy` takes them: their addresses and
 * CIDR blocks. Not `true` (every peer): then any client names its own address. Not a number of hops either: Fastify
 * trusts no peer for one (a direct client could claim to be behind as many proxies as it likes).
 */
const trustedProxies = z.string().transform((s, ctx) => {
  const entries = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (entries.length > 0 && entries.every(isTrustedProxy)) return entries;
  ctx.addIssue({
    code: 'custom',
    message:
      'the proxies’ addresses or CIDR blocks, comma separated (10.0.0.0/8, fd00::/8; loopback, linklocal, uniquelocal: those ranges), never every address, which lets a client name its own',
  });
  return z.NEVER;
});

const v = <S extends z.ZodType>(meaning: string, def: string, schema: S) => ({
  meaning,
  default: def,
  schema,
});
const key = (meaning: string) => ({ meaning, default: '—', schema: text, secret: true as const });

export const VARIABLES = {
  // --- the stream (flags of run and service win) -------------------------------------------------------------
  CRYPTOCAST_BUS: v(
    'transport: `memory` or `kafka://host:port[,host:port]`; every `service` but the trainer needs one (this or `--bus`)',
    '`memory` for `run`; none for `service`',
    text,
  ),
  CRYPTOCAST_PAIRS: v('pairs to follow', '`BTC/USD,ETH/USD`', text),
  CRYPTOCAST_INTERVAL: v('candle interval (`run` and the features: `1m` only)', '`1m`', text),
  CRYPTOCAST_GRACE: v('grace period of a candle window for late trades', '`5s`', text),
  CRYPTOCAST_LATE_POLICY: v('a trade later than the grace period: `dlq` or `revise`', '`dlq`', text),
  CRYPTOCAST_MAX_PRICE_FACTOR: v(
    'a trade or candle priced this many times above or below the recent median is dead-lettered',
    '`10`',
    text,
  ),
  CRYPTOCAST_TOPIC_PREFIX: v('namespace for Kafka topics and groups', 'none', text),
  CRYPTOCAST_KAFKA_REPLICATION_FACTOR: v('replicas of each topic cryptocast creates', '`1`', positiveInt),
  CRYPTOCAST_KAFKA_ENCODING: v(
    'Kafka values of the `trades` topic: `binary` (compact) or `json` (readable with any Kafka tool); consumers read both',
    '`binary`',
    z.enum(['binary', 'json'], { error: 'binary or json' }),
  ),
  CRYPTOCAST_KAFKA_REFUSED_FOR_MS: v(
    'services on Kafka: how long a path of a running client (its publishes, its broker waits, a subscription) may be refused (SASL, an ACL, TLS: credentials rotated, a certificate replaced) with no success of it between before the process ends, for its restart to take the new Secret (ms; 0: at the first refusal); meanwhile it retries and /ready says it',
    '`60000`',
    nonNegative,
  ),
  // Kafka security (src/config/kafka-security.ts; every Kafka client of the process: services, `topics`, `dlq`)
  CRYPTOCAST_KAFKA_TLS: v(
    'Kafka over TLS (`true` for a managed Kafka: MSK, Confluent Cloud, Aiven, Strimzi with TLS listeners)',
    '`false`',
    z.enum(['true', 'false'], { error: 'true or false' }).transform((x) => x === 'true'),
  ),
  CRYPTOCAST_KAFKA_CA_FILE: v(
    'Kafka TLS: PEM file of the CA certificates the brokers are checked against (in place of the system CAs)',
    "Node's CA store",
    text,
  ),
  CRYPTOCAST_KAFKA_CERT_FILE: v(
    'Kafka mutual TLS: PEM file of the client certificate (with its key)',
    'none',
    text,
  ),
  CRYPTOCAST_KAFKA_KEY_FILE: v(
    'Kafka mutual TLS: PEM file of the client key (with its certificate)',
    'none',
    text,
  ),
  CRYPTOCAST_KAFKA_KEY_PASSWORD: key('Kafka mutual TLS: passphrase of an encrypted client key'),
  CRYPTOCAST_KAFKA_SASL_MECHANISM: v(
    'Kafka SASL: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a user name and a password)',
    'none (no SASL)',
    z
      .string()
      .transform((x) => x.trim().toUpperCase())
      .pipe(
        z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'], {
          error:
            'PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (AWS_MSK_IAM, OAUTHBEARER and GSSAPI are not supported: on MSK use SASL/SCRAM or mutual TLS)',
        }),
      ),
  ),
  CRYPTOCAST_KAFKA_SASL_USERNAME: v('Kafka SASL: user name', 'none', text),
  CRYPTOCAST_KAFKA_SASL_PASSWORD: key('Kafka SASL: password (from a secret; never in the bus URL)'),
  CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS: v(
    'Kafka consumer-group session timeout (ms): how soon a dead member’s partitions move',
    '`10000`',
    positive,
  ),
  // --- trade sources -----------------------------------------------------------------------------------------
  CRYPTOCAST_EXCHANGES: v(
    'live exchanges (`kraken`, `binance`, `coinbase`; one per pair: `kraken,binance`)',
    '`kraken`',
    list,
  ),
  CRYPTOCAST_KRAKEN_WS_URL: v('Kraken WebSocket endpoint', 'the public one', text),
  CRYPTOCAST_KRAKEN_REST_URL: v('Kraken REST endpoint (live refills and `backfill`)', 'the public one', text),
  CRYPTOCAST_BINANCE_WS_URL: v('Binance WebSocket endpoint', 'the public one', text),
  CRYPTOCAST_BINANCE_REST_URL: v('Binance REST endpoint', 'the public one', text),
  CRYPTOCAST_COINBASE_WS_URL: v('Coinbase WebSocket endpoint', 'the public one', text),
  CRYPTOCAST_COINBASE_REST_URL: v('Coinbase REST endpoint', 'the public one', text),
  CRYPTOCAST_COINBASE_SIDE: v(
    "what Coinbase's trade side means: `maker` or `taker`",
    '`maker`',
    z.enum(['maker', 'taker'], { error: 'maker or taker' }),
  ),
  BINANCE_API_KEY: key('optional, for Binance `historicalTrades`'),
  BINANCE_API_SECRET: key('not used by cryptocast; redacted from logs should it be set'),
  CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: v(
    '`backfill`: least time between two Kraken REST pages (ms)',
    '`1000`',
    nonNegative,
  ),
  CRYPTOCAST_SHARED_DATA: v('the recordings folder', '`../shared/data`', text),
  CRYPTOCAST_DATA_DIR: v(
    '`data fetch` downloads here; `run --replay` and the default model read it',
    '`.data/public`',
    text,
  ),
  CRYPTOCAST_BINANCE_ARCHIVE_URL: v(
    '`data fetch`: base URL of the Binance public data archive',
    '`https://data.binance.vision`',
    text,
  ),
  // --- stores ------------------------------------------------------------------------------------------------
  CRYPTOCAST_STORE: v(
    'feature and predictions store: `duckdb:PATH` or `postgres://user[:password]@host:port/db` (a password only from a secret; refused in a `--store` flag)',
    '`duckdb:.data/cryptocast.duckdb`',
    text,
  ),
  CRYPTOCAST_DUCKDB_THREADS: v(
    'DuckDB stores: worker threads of the embedded database (its work here is small writes and range reads; a second thread competed with the pipeline for the core it runs on)',
    '`1`',
    positiveInt,
  ),
  CRYPTOCAST_STORE_BACKFILL: v('`features --store`: the store a feature backfill writes', 'none', text),
  CRYPTOCAST_STORE_TRAIN: v('`train --store`: the feature store to train from', 'none', text),
  PGPASSWORD: key(
    'PostgreSQL password, when the store URL has none (a URL without secrets in a ConfigMap, this from a Secret); redacted from logs',
  ),
  PGSSLMODE: v(
    'PostgreSQL stores: TLS as libpq means it, when the URL has no `sslmode`: `disable`, `require` (encrypted, not verified), `verify-ca` (the server’s certificate signed by the CA), `verify-full` (and issued for the host)',
    '`disable`',
    z.enum(['disable', 'require', 'verify-ca', 'verify-full'], {
      error:
        'disable, require, verify-ca or verify-full (prefer and allow, libpq’s fall-backs to plain text, are not supported: verify-full or require for a server with TLS, disable for one without)',
    }),
  ),
  PGSSLROOTCERT: v(
    'PostgreSQL stores: the CA certificate file (PEM) the server’s certificate is verified against, when the URL has no `sslrootcert`',
    'none (`verify-full`: the system’s CAs)',
    text,
  ),
  // --- news and sentiment ------------------------------------------------------------------------------------
  CRYPTOCAST_NEWS_FEEDS: v('`service news`: RSS/Atom feed URLs, comma-separated', 'none', list),
  CRYPTOPANIC_TOKEN: key('CryptoPanic API token (`service news` polls CryptoPanic when set)'),
  CRYPTOCAST_CRYPTOPANIC_URL: v('CryptoPanic endpoint', 'the public one', text),
  CRYPTOCAST_SENTIMENT_BACKEND: v('`local`, `openai` or `lexicon`', '`local`', text),
  CRYPTOCAST_LLM_MODEL: v('local backend: GGUF file', '`.models/gemma-3-270m-q4_k_m.gguf`', text),
  CRYPTOCAST_LLM_MODE: v('local backend: `classifier` or `generate`', '`classifier`', text),
  CRYPTOCAST_LLM_THREADS: v(
    "local backend: CPU threads of the model (the chart sets it to the pod's CPU limit)",
    'the CPUs the process may use (`os.availableParallelism()`: affinity and cgroup quota), at most the math cores',
    positiveInt,
  ),
  CRYPTOCAST_LLM_BASE_URL: v('openai backend: API base URL', '—', text),
  CRYPTOCAST_LLM_MODEL_NAME: v('openai backend: model name', '—', text),
  CRYPTOCAST_LLM_API_KEY: key('openai backend: API key'),
  OPENAI_API_KEY: key('openai backend: API key, when `CRYPTOCAST_LLM_API_KEY` is unset'),
  CRYPTOCAST_SENTIMENT_CACHE: v('append-only cache of LLM answers', '`.data/sentiment-cache.jsonl`', text),
  // --- training and the registry -----------------------------------------------------------------------------
  CRYPTOCAST_REGISTRY: v(
    'model registry: a directory or `mlflow+http://host:port`',
    '`.data/registry`',
    text,
  ),
  CRYPTOCAST_MODEL_NAME: v('registered model name', '`cryptocast-price`', text),
  CRYPTOCAST_PYTHON: v(
    "the trainer's Python (with python/requirements.txt)",
    '`.tools/trainer-venv/bin/python`',
    text,
  ),
  MLFLOW_TRACKING_TOKEN: key('MLflow registry: bearer token'),
  MLFLOW_TRACKING_USERNAME: v(
    'MLflow registry: basic-auth user (with `MLFLOW_TRACKING_PASSWORD`)',
    '—',
    text,
  ),
  MLFLOW_TRACKING_PASSWORD: key('MLflow registry: basic-auth password'),
  // --- the API -----------------------------------------------------------------------------------------------
  CRYPTOCAST_API_PORT: v('`api`: HTTP port (0: any free port)', '`8080`', text),
  CRYPTOCAST_API_HOST: v(
    '`api` and `run`: address to listen on',
    'all addresses for `service api`; `127.0.0.1` for `run`',
    text,
  ),
  CRYPTOCAST_API_KEYS: key(
    '`api`: accepted API keys, comma-separated, each at least 16 characters (none: no authentication)',
  ),
  CRYPTOCAST_API_TRUST_PROXY: v(
    '`api` and `run`: addresses or CIDR blocks of the proxies whose `X-Forwarded-For` names the client (the failed-key limit is per client; `uniquelocal`: the private ranges)',
    'none (the client is the connection’s peer)',
    trustedProxies,
  ),
  CRYPTOCAST_API_RATE: v('`api`: requests per second per key (token bucket)', '`50`', positive),
  CRYPTOCAST_API_BURST: v('`api`: burst of the token bucket', '`100`', positive),
  CRYPTOCAST_CORS_ORIGINS: v('`api`: allowed CORS origins (`*` for any)', 'none (no CORS headers)', list),
  CRYPTOCAST_WS_MAX_FRAMES: v('`api`: WebSocket frames per second per client', 'the hub’s default', positive),
  CRYPTOCAST_WS_MAX_BUFFER: v(
    '`api`: bytes a slow WebSocket client may have buffered before it is dropped',
    'the hub’s default',
    positive,
  ),
  CRYPTOCAST_WS_MAX_CLIENTS: v(
    '`api`: WebSocket connections at once; one more is closed with 1013 (try again later)',
    '`5000`',
    positive,
  ),
  // --- monitoring --------------------------------------------------------------------------------------------
  CRYPTOCAST_ALERT_RULES: v('alert rules file (YAML or JSON)', 'the shipped rules', text),
  CRYPTOCAST_METRICS_PORT: v("a service's Prometheus /metrics, /health, /ready port", 'off', text),
  CRYPTOCAST_MONITOR_STOP_TIMEOUT_MS: v(
    '`service monitor` and `run`: how long a stop waits for the store to take the verdicts and candles still queued (ms); what is left is named in the log, and judged again from `predictions` at the next start (Kafka)',
    '`15000`',
    timerMs,
  ),
  CRYPTOCAST_SLACK_WEBHOOK_URL: key('alert channel: Slack incoming webhook'),
  CRYPTOCAST_DISCORD_WEBHOOK_URL: key('alert channel: Discord webhook'),
  CRYPTOCAST_ALERT_WEBHOOK_URL: key('alert channel: generic webhook (JSON)'),
  CRYPTOCAST_ALERT_WEBHOOK_TOKEN: key('alert channel: bearer token of the generic webhook'),
  CRYPTOCAST_OPENSEARCH_PASSWORD: key('`service index-sink`: OpenSearch password (redacted from logs)'),
  CRYPTOCAST_OPENSEARCH_USERNAME: v('`service index-sink`: OpenSearch user name', 'none', text),
  CRYPTOCAST_OPENSEARCH_URL: v(
    '`service index-sink`: OpenSearch, `http(s)://host:9200` (no credentials)',
    '—',
    text,
  ),
  CRYPTOCAST_OPENSEARCH_CA: v(
    '`service index-sink`: the CA certificate file (PEM) an `https://` OpenSearch is verified against',
    'none (the system’s CAs)',
    text,
  ),
  CRYPTOCAST_INDEX_PREFIX: v('`service index-sink`: index and template name prefix', '`cryptocast-`', text),
  CRYPTOCAST_HEALTH_URL: v(
    "the image's HEALTHCHECK: the URL it probes",
    'the metrics port’s `/metrics`',
    text,
  ),
  // --- the process -------------------------------------------------------------------------------------------
  CRYPTOCAST_LOG_LEVEL: v(
    'pino level (logs are JSON on stderr; every configured secret is redacted from every line)',
    '`info` (`warn` under `run` and in tests)',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'fatal, error, warn, info, debug, trace or silent',
    }),
  ),
  CRYPTOCAST_FAULT: v(
    'tests only: `<point>:<n>` kills the process the n-th time it passes a fault point',
    'off',
    text,
  ),
} as const satisfies Record<string, Variable>;

type Variables = typeof VARIABLES;
export type VariableName = keyof Variables;
export type SecretName = {
  [K in VariableName]: Variables[K] extends { secret: true } ? K : never;
}[VariableName];
export type SettingName = Exclude<VariableName, SecretName>;

/** The names of the credentials, for redaction. */
export const SECRET_NAMES = (Object.keys(VARIABLES) as VariableName[]).filter(
  (n) => (VARIABLES[n] as Variable).secret === true,
) as SecretName[];

function raw(name: VariableName, env: NodeJS.ProcessEnv): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * A setting from the environment, checked and typed (a number, a list, one of some words), or undefined when
 * unset or empty. A bad value throws `CC_ERR_CONFIG` naming the variable and what was expected.
 */
export function setting<K extends SettingName>(
  name: K,
  env: NodeJS.ProcessEnv = process.env,
): z.output<Variables[K]['schema']> | undefined {
  const value = raw(name, env);
  if (value === undefined) return undefined;
  const r = (VARIABLES[name].schema as z.ZodType).safeParse(value);
  if (!r.success)
    throw new CryptocastError(
      ERR.CONFIG.code,
      `${name} must be ${r.error.issues[0]?.message ?? 'valid'}, got "${value}"`,
      { exitCode: ERR.CONFIG.exitCode },
    );
  return r.data as z.output<Variables[K]['schema']>;
}

/** A credential from the environment (never from a flag or a file), or undefined. Its value is never quoted. */
export function secret(name: SecretName, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return raw(name, env);
}
