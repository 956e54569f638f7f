/**
 * The environment each `cryptocast service …` reads, in one table: what a deployment (the Helm chart, the compose
 * stack) must set, what it may set, and which values are secrets (set from a Secret, never written in a manifest).
 *
 * The settings themselves are read where they are used (config.ts, the commands, the API, the sources); this table
 * is their inventory. A unit test scans the sources for every variable read and fails on one missing here, and the
 * deployment tests check the chart and the compose file against it: every required variable set for each service,
 * every secret from a secret reference, and no variable set for a service that does not read it.
 */

export const SERVICES = [
  'trades',
  'candles',
  'features',
  'feature-writer',
  'news',
  'news-signals',
  'predictor',
  'monitor',
  'api',
  'index-sink',
  'trainer',
] as const;
export type ServiceName = (typeof SERVICES)[number];

/** The services that read or write topics: all but the trainer (feature store → registry). */
export const BUS_SERVICES = SERVICES.filter((s) => s !== 'trainer');

export interface EnvSetting {
  name: string;
  services: readonly ServiceName[];
  /** A deployment must set it: the default only makes sense on a laptop (e.g. the in-process bus, a DuckDB file). */
  required?: boolean;
  /** A credential: from a Secret only, never logged. */
  secret?: boolean;
  about: string;
}

const STORE_USERS: ServiceName[] = ['feature-writer', 'predictor', 'api', 'trainer', 'monitor'];
const REGISTRY_USERS: ServiceName[] = ['predictor', 'api', 'trainer', 'monitor'];

export const SERVICE_ENV: readonly EnvSetting[] = [
  // every service
  { name: 'CRYPTOCAST_LOG_LEVEL', services: SERVICES, about: 'pino level (info)' },
  {
    name: 'CRYPTOCAST_METRICS_PORT',
    services: SERVICES,
    about: '--metrics-port: /metrics, /health, /ready (the image HEALTHCHECK probes it too)',
  },
  // the bus
  { name: 'CRYPTOCAST_BUS', services: BUS_SERVICES, required: true, about: 'kafka://host:port[,host:port]' },
  { name: 'CRYPTOCAST_TOPIC_PREFIX', services: BUS_SERVICES, about: 'namespace of topics and groups' },
  // Kafka security (src/config/kafka-security.ts): a managed Kafka's TLS and SASL, read by every Kafka client
  { name: 'CRYPTOCAST_KAFKA_TLS', services: BUS_SERVICES, about: 'TLS to the brokers: true | false (false)' },
  {
    name: 'CRYPTOCAST_KAFKA_CA_FILE',
    services: BUS_SERVICES,
    about: 'PEM CA bundle the brokers are checked against (a Secret mounted as a file)',
  },
  { name: 'CRYPTOCAST_KAFKA_CERT_FILE', services: BUS_SERVICES, about: 'mTLS client certificate (PEM file)' },
  { name: 'CRYPTOCAST_KAFKA_KEY_FILE', services: BUS_SERVICES, about: 'mTLS client key (PEM file)' },
  {
    name: 'CRYPTOCAST_KAFKA_KEY_PASSWORD',
    services: BUS_SERVICES,
    secret: true,
    about: 'passphrase of an encrypted mTLS key',
  },
  {
    name: 'CRYPTOCAST_KAFKA_SASL_MECHANISM',
    services: BUS_SERVICES,
    about: 'PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (none: no SASL)',
  },
  { name: 'CRYPTOCAST_KAFKA_SASL_USERNAME', services: BUS_SERVICES, about: 'SASL user name' },
  { name: 'CRYPTOCAST_KAFKA_SASL_PASSWORD', services: BUS_SERVICES, secret: true, about: 'SASL password' },
  {
    name: 'CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS',
    services: BUS_SERVICES,
    about: 'consumer group session (10000)',
  },
  {
    name: 'CRYPTOCAST_KAFKA_REFUSED_FOR_MS',
    services: BUS_SERVICES,
    about:
      'refusals (SASL, ACL, TLS) of a running client with no success between for this long end the service (60000)',
  },
  {
    name: 'CRYPTOCAST_KAFKA_REPLICATION_FACTOR',
    services: BUS_SERVICES,
    about: 'replicas of topics a service creates when missing (1)',
  },
  {
    name: 'CRYPTOCAST_KAFKA_ENCODING',
    services: ['trades', 'candles'],
    about: 'trades topic values: binary (default) or json',
  },
  // market data
  { name: 'CRYPTOCAST_PAIRS', services: ['trades', 'api', 'candles'], about: 'pairs (BTC/USD,ETH/USD)' },
  { name: 'CRYPTOCAST_INTERVAL', services: ['candles'], about: 'candle interval (1m)' },
  { name: 'CRYPTOCAST_GRACE', services: ['candles'], about: 'late-trade grace (5s)' },
  {
    name: 'CRYPTOCAST_LATE_POLICY',
    services: ['candles', 'monitor'],
    about: 'dlq | revise (the monitor keeps first emissions under revise)',
  },
  {
    name: 'CRYPTOCAST_EXCHANGES',
    services: ['trades'],
    about: 'kraken, binance, coinbase; one per pair (kraken)',
  },
  { name: 'CRYPTOCAST_COINBASE_SIDE', services: ['trades'], about: 'maker | taker' },
  { name: 'CRYPTOCAST_KRAKEN_WS_URL', services: ['trades'], about: 'endpoint override' },
  { name: 'CRYPTOCAST_KRAKEN_REST_URL', services: ['trades'], about: 'endpoint override (gap refill)' },
  { name: 'CRYPTOCAST_BINANCE_WS_URL', services: ['trades'], about: 'endpoint override' },
  { name: 'CRYPTOCAST_BINANCE_REST_URL', services: ['trades'], about: 'endpoint override' },
  { name: 'CRYPTOCAST_COINBASE_WS_URL', services: ['trades'], about: 'endpoint override' },
  { name: 'CRYPTOCAST_COINBASE_REST_URL', services: ['trades'], about: 'endpoint override' },
  { name: 'BINANCE_API_KEY', services: ['trades'], secret: true, about: 'Binance REST key (optional)' },
  { name: 'BINANCE_API_SECRET', services: ['trades'], secret: true, about: 'Binance REST secret (optional)' },
  {
    name: 'CRYPTOCAST_MAX_PRICE_FACTOR',
    services: ['trades', 'candles', 'features'],
    about: 'price guard: a trade this many times off the running median is dead-lettered (10)',
  },
  // news and sentiment
  { name: 'CRYPTOCAST_NEWS_FEEDS', services: ['news'], about: 'RSS/Atom URLs, comma separated' },
  { name: 'CRYPTOPANIC_TOKEN', services: ['news'], secret: true, about: 'CryptoPanic API token (optional)' },
  { name: 'CRYPTOCAST_CRYPTOPANIC_URL', services: ['news'], about: 'endpoint override' },
  {
    name: 'CRYPTOCAST_SENTIMENT_BACKEND',
    services: ['news-signals'],
    required: true,
    about: 'local | openai | lexicon (the default, local, needs the GGUF weights on a volume)',
  },
  { name: 'CRYPTOCAST_SENTIMENT_CACHE', services: ['news-signals'], about: 'answer cache (JSONL, writable)' },
  { name: 'CRYPTOCAST_LLM_MODEL', services: ['news-signals'], about: 'local: GGUF file' },
  { name: 'CRYPTOCAST_LLM_MODE', services: ['news-signals'], about: 'local: classifier | generate' },
  {
    name: 'CRYPTOCAST_LLM_THREADS',
    services: ['news-signals'],
    about: 'local: model threads (the CPU limit)',
  },
  { name: 'CRYPTOCAST_LLM_BASE_URL', services: ['news-signals'], about: 'openai: endpoint' },
  { name: 'CRYPTOCAST_LLM_MODEL_NAME', services: ['news-signals'], about: 'openai: model' },
  { name: 'CRYPTOCAST_LLM_API_KEY', services: ['news-signals'], secret: true, about: 'openai: key' },
  { name: 'OPENAI_API_KEY', services: ['news-signals'], secret: true, about: 'openai: key (fallback name)' },
  // stores and registry
  {
    // `service --store`, whose value comes from here or its laptop default (a DuckDB file): every store user needs it.
    name: 'CRYPTOCAST_STORE',
    services: ['feature-writer', 'predictor', 'trainer', 'monitor', 'api'],
    required: true,
    about:
      'feature store (feature-writer, trainer) / predictions store (predictor, api) / errors store (monitor, api): postgres://user@host/db',
  },
  {
    name: 'PGPASSWORD',
    services: STORE_USERS,
    secret: true,
    about: 'PostgreSQL password, when the URL has none',
  },
  {
    name: 'PGSSLMODE',
    services: STORE_USERS,
    about: 'PostgreSQL TLS: disable, require, verify-ca, verify-full (disable; a URL sslmode wins)',
  },
  {
    name: 'PGSSLROOTCERT',
    services: STORE_USERS,
    about: "PostgreSQL TLS: the CA file (PEM) the server's certificate is verified against",
  },
  {
    name: 'CRYPTOCAST_DUCKDB_THREADS',
    services: STORE_USERS,
    about: 'a DuckDB store (a laptop, not a deployment): worker threads of the database (default 1)',
  },
  {
    name: 'CRYPTOCAST_REGISTRY',
    services: REGISTRY_USERS,
    required: true,
    about: 'mlflow+http://host:port, or a directory on a shared volume',
  },
  { name: 'CRYPTOCAST_MODEL_NAME', services: REGISTRY_USERS, about: 'registered model (cryptocast-price)' },
  { name: 'MLFLOW_TRACKING_TOKEN', services: REGISTRY_USERS, secret: true, about: 'MLflow bearer token' },
  { name: 'MLFLOW_TRACKING_USERNAME', services: REGISTRY_USERS, about: 'MLflow basic auth user' },
  { name: 'MLFLOW_TRACKING_PASSWORD', services: REGISTRY_USERS, secret: true, about: 'MLflow basic auth' },
  { name: 'CRYPTOCAST_PYTHON', services: ['trainer'], about: "the trainer venv's python (set by its image)" },
  // the API
  { name: 'CRYPTOCAST_API_PORT', services: ['api'], about: 'HTTP port (8080)' },
  { name: 'CRYPTOCAST_API_HOST', services: ['api'], about: 'listen address (0.0.0.0)' },
  {
    name: 'CRYPTOCAST_API_KEYS',
    services: ['api'],
    secret: true,
    about: 'accepted API keys, comma separated',
  },
  {
    name: 'CRYPTOCAST_API_TRUST_PROXY',
    services: ['api'],
    about: 'proxies (CIDRs) whose X-Forwarded-For names the client (none)',
  },
  { name: 'CRYPTOCAST_API_RATE', services: ['api'], about: 'per-key requests/s (50)' },
  { name: 'CRYPTOCAST_API_BURST', services: ['api'], about: 'per-key burst (100)' },
  { name: 'CRYPTOCAST_CORS_ORIGINS', services: ['api'], about: 'allowed origins, comma separated' },
  { name: 'CRYPTOCAST_WS_MAX_FRAMES', services: ['api'], about: 'WebSocket frames/s per client' },
  { name: 'CRYPTOCAST_WS_MAX_BUFFER', services: ['api'], about: 'WebSocket send buffer per client (bytes)' },
  { name: 'CRYPTOCAST_WS_MAX_CLIENTS', services: ['api'], about: 'WebSocket connections at once' },
  // the monitor's alerts
  {
    name: 'CRYPTOCAST_ALERT_RULES',
    services: ['monitor'],
    about: 'alert rules file, YAML or JSON (the shipped rules)',
  },
  {
    name: 'CRYPTOCAST_MONITOR_STOP_TIMEOUT_MS',
    services: ['monitor'],
    about: 'how long a stop waits for the store to take what is queued (15000)',
  },
  {
    name: 'CRYPTOCAST_SLACK_WEBHOOK_URL',
    services: ['monitor'],
    secret: true,
    about: 'alert webhook (Slack)',
  },
  {
    name: 'CRYPTOCAST_DISCORD_WEBHOOK_URL',
    services: ['monitor'],
    secret: true,
    about: 'alert webhook (Discord)',
  },
  {
    name: 'CRYPTOCAST_ALERT_WEBHOOK_URL',
    services: ['monitor'],
    secret: true,
    about: 'alert webhook (generic)',
  },
  {
    name: 'CRYPTOCAST_ALERT_WEBHOOK_TOKEN',
    services: ['monitor'],
    secret: true,
    about: 'bearer token of it',
  },
  // the index sink
  {
    name: 'CRYPTOCAST_OPENSEARCH_URL',
    services: ['index-sink'],
    required: true,
    about: 'http(s)://host:9200 (no credentials in it)',
  },
  {
    name: 'CRYPTOCAST_OPENSEARCH_USERNAME',
    services: ['index-sink'],
    about: 'basic auth user',
  },
  {
    name: 'CRYPTOCAST_OPENSEARCH_PASSWORD',
    services: ['index-sink'],
    secret: true,
    about: 'basic auth password',
  },
  {
    name: 'CRYPTOCAST_OPENSEARCH_CA',
    services: ['index-sink'],
    about: 'CA file (PEM) an https OpenSearch is verified against (the system CAs)',
  },
  { name: 'CRYPTOCAST_INDEX_PREFIX', services: ['index-sink'], about: 'index name prefix (cryptocast-)' },
];

/**
 * Variables the sources read that no deployed service needs: local commands, tests, and the image's HEALTHCHECK.
 * Listed so that the inventory test can tell them from a setting someone forgot to declare.
 */
export const NOT_SERVICE_SETTINGS: Readonly<Record<string, string>> = {
  NODE_ENV: 'test runs lower the log level',
  CRYPTOCAST_FAULT: 'fault injection in crash tests',
  CRYPTOCAST_SHARED_DATA: 'where recordings are replayed from (run, service --source replay)',
  CRYPTOCAST_STORE_BACKFILL: 'cryptocast features --store',
  CRYPTOCAST_STORE_TRAIN: 'cryptocast train --store',
  CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: 'cryptocast backfill pacing',
  CRYPTOCAST_HEALTH_URL: "the image's HEALTHCHECK probe (src/cli/probe.ts)",
  CRYPTOCAST_DATA_DIR:
    'cryptocast data fetch, run --replay and the default model (a laptop without the recordings)',
  CRYPTOCAST_BINANCE_ARCHIVE_URL: 'cryptocast data fetch',
};

/** The settings of one service. */
export function envOf(service: ServiceName): EnvSetting[] {
  return SERVICE_ENV.filter((s) => s.services.includes(service));
}
