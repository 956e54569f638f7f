import { type Command, Option } from 'commander';
import { DEFAULT_STORE } from '../features/store/open.ts';
import { IntervalSchema } from '../schemas/candle.ts';

/**
 * Flags that several commands share, declared once: each is a function that makes a fresh `Option` (commander
 * keeps per-command state on it), so a command attaches exactly the ones it uses and `--help` shows only those.
 * A flag that falls back to an environment variable names it here (the variables are listed in config/env.ts).
 */
export const flag = {
  bus: () => new Option('--bus <url>', 'transport: memory or kafka://host:port').env('CRYPTOCAST_BUS'),
  pairs: (description = 'pairs to follow, comma separated (BTC/USD,ETH/USD)') =>
    new Option('--pairs <list>', description).env('CRYPTOCAST_PAIRS'),
  /** `choices: false`: the command checks the value itself (`run` takes only 1m, and says where to go for others). */
  interval: (
    description = 'candle interval',
    choices: readonly string[] | false = IntervalSchema.options,
  ) => {
    const option = new Option('--interval <i>', description).env('CRYPTOCAST_INTERVAL');
    return choices === false ? option : option.choices(choices);
  },
  grace: () =>
    new Option('--grace <duration>', 'how long a window waits for late trades (e.g. 5s)').env(
      'CRYPTOCAST_GRACE',
    ),
  maxPriceFactor: () =>
    new Option(
      '--max-price-factor <x>',
      'dead-letter a trade or candle priced more than x times above or below the recent median (default 10)',
    ).env('CRYPTOCAST_MAX_PRICE_FACTOR'),
  latePolicy: () =>
    new Option(
      '--late-policy <policy>',
      'trades after their window closed: dlq = dead-letter, revise = re-emit the candle',
    )
      .choices(['dlq', 'revise'])
      .env('CRYPTOCAST_LATE_POLICY'),
  store: (description = 'feature store: duckdb:PATH or postgres://…') =>
    new Option('--store <url>', description).env('CRYPTOCAST_STORE').default(DEFAULT_STORE),
  registry: (description = 'model registry: a directory, or mlflow+http://host:port') =>
    new Option('--registry <url>', description).env('CRYPTOCAST_REGISTRY'),
  modelName: (description = 'registered model name') =>
    new Option('--name <name>', description).env('CRYPTOCAST_MODEL_NAME'),
  clock: (description: string) =>
    new Option('--clock <clock>', description).choices(['wall', 'event']).default('wall'),
  alertRules: () =>
    new Option('--alert-rules <file>', 'alert rules, YAML or JSON (default: the shipped rules)').env(
      'CRYPTOCAST_ALERT_RULES',
    ),
  metricsPort: (description = 'serve Prometheus /metrics, /health and /ready on this port (default: off)') =>
    new Option('--metrics-port <port>', description).env('CRYPTOCAST_METRICS_PORT'),
  source: (description: string, defaultSource: 'replay' | 'live') =>
    new Option('--source <source>', description).choices(['replay', 'live']).default(defaultSource),
  /**
   * Trade files or folders to replay: comma separated, and the flag may be repeated (each adds to the list: given
   * twice, only the last had been replayed, the other dropped without a word).
   */
  data: (description: string) =>
    new Option('--data <path>', `${description}; comma separated or repeated`).argParser(
      (value: string, previous: string | undefined) =>
        previous === undefined ? value : `${previous},${value}`,
    ),
  speed: (description = 'replay speed: "max" or a factor (1 = recorded speed)') =>
    // Not `<n>`: the default, "max", is no number.
    new Option('--speed <factor|max>', description).default('max'),
};

/** The stream's settings (`run`): pairs, candle interval, grace, price guard, late policy. */
export const streamOptions = (cmd: Command) =>
  cmd
    // What each mode plays without it: a live run follows the stream's default pairs (config.ts), a replay of trade
    // files every pair they hold, --replay the recorded klines (data/locations.ts). It said "(BTC/USD,ETH/USD)", the
    // live default only, which neither replay follows (test/unit/cli/help-texts.test.ts holds it to those defaults).
    .addOption(
      flag.pairs(
        'pairs, comma separated (default: live: BTC/USD,ETH/USD; a replay: every pair its files hold; --replay: BTC/USDT,ETH/USDT)',
      ),
    )
    // Not the shared choices (1m, 5m, 15m, 1h): run's help listed intervals that run refuses.
    .addOption(
      flag.interval(
        'candle interval: 1m only (run makes features and predictions of 1-minute candles; for other candles: cryptocast candles --interval)',
        false,
      ),
    )
    .addOption(flag.grace())
    .addOption(flag.maxPriceFactor())
    .addOption(flag.latePolicy());

/** Flags that choose and configure the sentiment backend (`sentiment score|eval`, `service news-signals`). */
export const backendOptions = (cmd: Command) =>
  cmd
    .addOption(
      new Option(
        '--backend <name>',
        'sentiment backend: local LLM (default), OpenAI-compatible HTTP, or lexicon',
      )
        .choices(['local', 'openai', 'lexicon'])
        .env('CRYPTOCAST_SENTIMENT_BACKEND')
        .default('local'),
    )
    .addOption(
      new Option(
        '--model-path <file.gguf>',
        'local: GGUF weights (default: Gemma 3 270M from scripts/models.sh)',
      ).env('CRYPTOCAST_LLM_MODEL'),
    )
    .addOption(
      new Option('--local-mode <mode>', 'local: embedding classifier, or the model writes the JSON answer')
        .choices(['classifier', 'generate'])
        .env('CRYPTOCAST_LLM_MODE'),
    )
    .addOption(
      new Option('--base-url <url>', 'openai: API base URL, e.g. http://127.0.0.1:11434/v1').env(
        'CRYPTOCAST_LLM_BASE_URL',
      ),
    )
    .addOption(new Option('--model <name>', 'openai: model name').env('CRYPTOCAST_LLM_MODEL_NAME'));
