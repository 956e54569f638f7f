#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, type CommanderError, Option } from 'commander';
import { CryptocastError, ERR, UsageError } from '../core/errors.ts';
import { redactSecrets } from '../core/secrets.ts';
import { TRADE_FILE_FORMATS } from '../ingestion/files/types.ts';
import { DEFAULT_GATE } from '../training/gate.ts';
import { PREDICTIONS_CSV_COLUMNS } from '../training/predictions-csv.ts';
import { DEFAULT_REGISTRY } from '../training/registry/open.ts';
import { DEFAULT_MODEL_NAME } from '../training/registry/registry.ts';
import { TUNE_SECONDS } from '../training/trainer-service.ts';
import { checkFlagValues, refuseCredentialsInFlags } from './flags.ts';
import { backendOptions, flag, streamOptions } from './options.ts';
import { addServiceCommands } from './service-commands.ts';

/**
 * The version is package.json's, the one place it is kept (the image ships package.json next to src/).
 * Not npm_package_version: npm sets that to the version of whatever package's script is running, and it is unset
 * when bin/cryptocast is run directly.
 */
const VERSION: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version;

/**
 * The cryptocast CLI: every entry point of the system, one command each. A stable contract (see
 * ../shared/docs/architecture.md §6): users, scripts and tests depend on these names and flags. Each command's code is
 * loaded only when it runs, so `--help` is instant.
 */
const program = new Command()
  .name('cryptocast')
  .description('Real-time BTC/ETH price prediction: trades → candles → features → model → predictions')
  .showHelpAfterError(`  hint: ${ERR.USAGE.hint}`)
  .version(VERSION)
  .configureHelp({ sortSubcommands: false })
  // Commander's own refusals (unknown command or flag, missing value, a value not among the choices or malformed:
  // checkFlagValues) are usage errors like ours: one line with the code, exit 2; commander's suggestion ("(Did you
  // mean --serve?)", on a line of its own) a hint under it, as the catalogue's hints are printed. A bad value that
  // came from the environment variable a flag falls back to ("… from env 'CRYPTOCAST_GRACE' is invalid") is a
  // setting's: CC_ERR_CONFIG, as every other bad CRYPTOCAST_* variable. Subcommands inherit these settings.
  .configureOutput({
    outputError: (text, write) => {
      const [first, ...more] = text
        .replace(/^error: /, '')
        .trimEnd()
        .split('\n');
      const hints = more.map((l) => `  hint: ${l.replace(/^\(Did you mean (.*)\)$/, 'did you mean $1')}\n`);
      const code = / from env '[^']+' is invalid\./.test(first!) ? ERR.CONFIG.code : ERR.USAGE.code;
      // Redacted: commander quotes the refused value, which may be a URL with a password.
      write(`cryptocast: ${redactSecrets(first!)} [${code}]\n${hints.join('')}`);
    },
  })
  .exitOverride((err) => process.exit(commanderExitStatus(err)))
  // Before any command runs: a password in a flag is refused (every command, every URL flag; see flags.ts).
  .hook('preAction', (_program, command) => refuseCredentialsInFlags(command));

backendOptions(
  streamOptions(
    program
      .command('run')
      .description('run the whole system in one process on the embedded default (in-process bus)')
      .addOption(flag.source('where trades come from', 'replay'))
      .addOption(flag.data('recorded trade file(s) or folder to replay (default: the shared recordings)'))
      .addOption(flag.speed())
      .addOption(
        new Option('--port <port>', 'HTTP port of the prediction API (0: any free port)')
          .env('CRYPTOCAST_API_PORT')
          .default('8080'),
      )
      .option('--serve', 'replay: keep serving the API after the replay ends, until Ctrl-C')
      .addOption(flag.store())
      .option('--quiet', 'no live progress line')
      .option('--json', 'stdout: JSON lines of what is durably stored, then a summary (for scripts)')
      .option('--no-monitor', 'without the monitoring pipeline (no error records, rolling quality or alerts)')
      .addOption(flag.alertRules())
      .option(
        '--no-adaptive-conformal',
        'publish the model’s own p10–p90 band (default: adjusted by online adaptive conformal inference, which learns from matured outcomes)',
      )
      .option(
        '--shrinkage',
        'shrink the predicted return toward persistence by its recent matured errors (the predictor’s gate)',
      )
      .option(
        '--replay <month>',
        'play recorded 1-minute klines (BTCUSDT, ETHUSDT) with the news of the same months, e.g. 2022-05 or 2022-05..2022-06',
      )
      .option('--no-news', 'without the news half (news → sentiment → news features)')
      .addOption(
        flag.metricsPort(
          'also serve /metrics, /health and /ready on this port (the API serves /metrics on --port; default: off)',
        ),
      )
      .option(
        '--metrics-port-only',
        'serve /metrics only on --metrics-port, not on the API’s --port (where anyone who reaches it could read it)',
      )
      .option(
        '--news-max-lag <duration>',
        'news items that waited longer than this are scored by the lexicon instead of the LLM (a replay: the wait a live run would have had, in replay time)',
        '60s',
      )
      .addOption(
        new Option(
          '--feeds <urls>',
          'live: RSS/Atom feed URLs, comma separated (default: CoinDesk, Cointelegraph, Decrypt, Bitcoin Magazine)',
        ).env('CRYPTOCAST_NEWS_FEEDS'),
      ),
  ),
).action(async (opts, cmd: Command) => {
  // One process for everything: keep the terminal for candles and the status line, warnings only in logs.
  process.env.CRYPTOCAST_LOG_LEVEL ??= 'warn';
  // A refusal names where the pairs came from: an exported CRYPTOCAST_PAIRS was reported as "--pairs".
  const pairsSetting = cmd.getOptionValueSource('pairs') === 'env' ? 'CRYPTOCAST_PAIRS' : '--pairs';
  // Likewise the interval: `run --interval 5m` was refused as "CRYPTOCAST_INTERVAL=5m", hint "unset" it.
  const intervalSetting =
    cmd.getOptionValueSource('interval') === 'env' ? 'CRYPTOCAST_INTERVAL' : '--interval';
  // Only a live run polls feeds: a replay plays the recorded news and ignored the flag without a word. (An exported
  // CRYPTOCAST_NEWS_FEEDS, meant for live runs, does not stop a replay.)
  if (cmd.getOptionValueSource('feeds') === 'cli' && opts.source !== 'live')
    throw new UsageError(
      '--feeds: the news feeds are polled only by a live run (--source live); a replay plays the recorded news',
    );
  // And the alert rules file: one from CRYPTOCAST_ALERT_RULES that could not be read was reported as --alert-rules.
  const alertRulesSetting =
    cmd.getOptionValueSource('alertRules') === 'env' ? 'CRYPTOCAST_ALERT_RULES' : '--alert-rules';
  return (await import('./commands/run.ts')).run({
    ...opts,
    pairsSetting,
    intervalSetting,
    alertRulesSetting,
  });
});

addServiceCommands(program);

program
  .command('backfill')
  .description(
    'fetch historical trades over an exchange REST API (resumable), into a CSV file or onto the bus',
  )
  .addOption(new Option('--exchange <name>', 'exchange').choices(['kraken']).makeOptionMandatory())
  .requiredOption('--pair <pair>', 'pair, e.g. BTC/USD')
  .requiredOption('--since <iso>', 'start time, ISO 8601 (e.g. 2025-11-10T12:00:00Z)')
  .option('--until <iso>', 'end time, ISO 8601 (default: now)')
  .option('--output <file.csv>', 'write trades to this CSV file (default when no --bus)')
  .addOption(
    new Option('--bus <url>', 'publish to the trades topic of this bus instead (not with --output)').env(
      'CRYPTOCAST_BUS',
    ),
  )
  .option(
    '--state <file>',
    'resume state file, paired with its --output (default: .data/backfill/<exchange>-<pair>-<since>.state.json)',
  )
  .addOption(new Option('--base-url <url>', 'REST base URL').env('CRYPTOCAST_KRAKEN_REST_URL'))
  .action(async (opts, cmd: Command) => {
    // Both named on the command line: the trades went to the file and the bus was silently ignored. CRYPTOCAST_BUS in
    // the environment stays a default that an explicit --output overrides.
    if (opts.output !== undefined && cmd.getOptionValueSource('bus') === 'cli')
      throw new UsageError(
        'backfill writes trades to --output FILE.csv or onto --bus URL, not both: give one',
      );
    return (await import('./commands/backfill.ts')).backfill(opts);
  });

const data = program
  .command('data')
  .description("market data for users without the recordings: download from the exchanges' public archives");
data
  .command('fetch')
  .description(
    'Binance 1-minute klines (data.binance.vision), each zip checked against its published SHA-256, resumable; ' +
      'default: what the default model and `run --replay 2022-05` need (2022-05, 2022-12..2023-02). ' +
      'Kraken trades: cryptocast backfill --exchange kraken',
  )
  .option('--from <month>', 'first month, e.g. 2022-05')
  .option('--to <month>', 'last month, inclusive (default: --from)')
  .option('--symbols <list>', 'Binance spot symbols, comma separated', 'BTCUSDT,ETHUSDT')
  .addOption(
    new Option('--period <p>', 'monthly zips for past months, daily for the current one (auto)')
      .choices(['auto', 'daily', 'monthly'])
      .default('auto'),
  )
  .addOption(
    new Option('--dir <folder>', 'data folder (default .data/public), read by run --replay and train').env(
      'CRYPTOCAST_DATA_DIR',
    ),
  )
  .addOption(new Option('--base-url <url>', 'archive base URL').env('CRYPTOCAST_BINANCE_ARCHIVE_URL'))
  .option('--concurrency <n>', 'downloads at once', '3')
  .option('--attempts <n>', 'attempts per file on connection errors and HTTP 5xx/429', '6')
  .option('--json', 'stdout: one JSON summary line')
  .action(async (opts) => (await import('./commands/data.ts')).dataFetch(opts));

program
  .command('candles')
  .description('aggregate a trades file into OHLCV candles (CSV)')
  .requiredOption('--input <file>', 'trades file: Kraken REST JSON, Binance WS capture, trade CSV (gzip ok)')
  // The formats in the help: it said only "input format, or auto", and the names were in the refusal alone.
  .addOption(
    new Option('--format <format>', 'input format, or auto (by content)')
      .choices(['auto', ...TRADE_FILE_FORMATS])
      .default('auto'),
  )
  .addOption(new Option('--interval <i>', 'candle interval').choices(['1m', '5m', '15m', '1h']).default('1m'))
  .option('--pair <pair>', 'pair, when the file does not say')
  .option('--grace <duration>', 'grace period for out-of-order trades', '5s')
  .addOption(
    new Option(
      '--max-price-factor <x>',
      'dead-letter a trade priced more than x times above or below the recent median (default 10)',
    ).env('CRYPTOCAST_MAX_PRICE_FACTOR'),
  )
  .requiredOption(
    '--output <file.csv>',
    'output CSV: ' + 'pair,windowStart,windowEnd,open,high,low,close,volume,trades,vwap,filled',
  )
  .action(async (opts) => (await import('./commands/candles.ts')).candles(opts));

program
  .command('features')
  .description('compute technical features from candles (any OHLCV CSV, Binance kline zips or folders)')
  .requiredOption(
    '--candles <path>',
    'candle file or folder: cryptocast candles output, OHLCV CSV, Binance klines (csv/zip/gz)',
  )
  .option('--output <file.csv>', 'output CSV: pair,windowStart,windowEnd,close,ready,<feature columns>')
  .addOption(
    new Option(
      '--store <url>',
      'also write to a feature store (duckdb:PATH, postgres://…): a backfill, idempotent',
    ).env('CRYPTOCAST_STORE_BACKFILL'),
  )
  .option('--exchange <id>', 'exchange id recorded with the vectors in the store', 'file')
  .option('--json', '--store: a JSON line on stdout after each batch stored ({"event":"stored","rows":N})')
  .option(
    '--news <file>',
    'join point-in-time news features from a news recording (signals keyed by when they became available)',
  )
  .addOption(
    new Option(
      '--sentiment <backend>',
      '--news: sentiment backend (answers cached in .data/sentiment-cache.jsonl)',
    )
      .choices(['local', 'openai', 'lexicon'])
      .default('local'),
  )
  .option('--pair <pair>', 'pair, when the file does not say')
  .action(async (opts) => (await import('./commands/features.ts')).features(opts));

const topicsCmd = program
  .command('topics')
  .description('the Kafka topics cryptocast declares: list them, or create the missing ones (a deploy step)');
topicsCmd
  .command('list')
  .description('name, partitions and cleanup policy of every topic')
  .option('--json', 'machine-readable output')
  .action(async (opts) => (await import('./commands/topics.ts')).listTopics(opts));
topicsCmd
  .command('create')
  .description('create the missing topics with their partition counts; check those that exist (idempotent)')
  .addOption(new Option('--bus <url>', 'kafka://host:port[,host:port]').env('CRYPTOCAST_BUS'))
  .addOption(
    new Option('--replication-factor <n>', 'replicas of each topic created').env(
      'CRYPTOCAST_KAFKA_REPLICATION_FACTOR',
    ),
  )
  .option(
    '--retention <duration>',
    "retention.ms of every topic created (at least 169h, the predictor's warm-up reach; default: 8d for predictions and predictor.aci, the broker's default for the others)",
  )
  .option('--timeout <duration>', 'give up when the broker does not answer within this time', '60s')
  .action(async (opts) => (await import('./commands/topics.ts')).createTopics(opts));

const dlqCmd = program
  .command('dlq')
  .description('the dead-letter topic (Kafka): what was rejected and why; replay what should have passed');
const dlqFilters = (c: Command) =>
  c
    .addOption(new Option('--bus <url>', 'kafka://host:port[,host:port]').env('CRYPTOCAST_BUS'))
    .option('--service <name>', 'only dead letters of this service (e.g. candles)')
    .option('--origin <name>', 'only dead letters from this topic or source (e.g. trades, kraken-ws)')
    .option('--kind <kind>', 'only this kind (e.g. invalid, late, implausible)')
    .option('--since <duration>', 'only those written in this last span (e.g. 30m, 2h, 7d)')
    .option('--limit <n>', 'read at most the latest N dead letters', '1000')
    .option('--timeout <duration>', 'give up when the broker does not answer within this time', '30s')
    .option('--json', 'machine-readable output');
dlqFilters(dlqCmd.command('list'))
  .description('dead letters grouped by service, origin and kind, with their latest reason')
  .option('--records', 'also list every dead letter (with --json: one JSON line each)')
  .action(async (opts) => (await import('./commands/dlq.ts')).listCommand(opts));
dlqFilters(dlqCmd.command('replay'))
  .description(
    'publish the payloads of dead letters to a topic (--to), checked as a consumer checks them; copies skipped',
  )
  .option('--to <topic>', 'required: the topic the payloads go to (e.g. trades)')
  .option('--dry-run', 'say what would be published, publish nothing')
  .action(async (opts) => (await import('./commands/dlq.ts')).replayCommand(opts));

program
  .command('schemas')
  .description('print the topic contracts (zod schemas) as an AsyncAPI 3.0 document')
  .option('--output <file.json>', 'write to a file instead of stdout')
  .action(async (opts) => (await import('./commands/schemas.ts')).schemas(opts));

const sentiment = program
  .command('sentiment')
  .description('news sentiment: score a text, or evaluate a backend on a labelled set');
backendOptions(sentiment.command('score'))
  .description('score one text (the signal per coin it mentions)')
  .argument('<text>', 'the text')
  .action(async (text, opts) => (await import('./commands/sentiment.ts')).score(text, opts));
backendOptions(sentiment.command('eval'))
  .description('accuracy, macro-F1, confusion matrix and latency on a human-labelled set')
  .requiredOption(
    '--dataset <file>',
    'CryptoLin_IE.csv, FinancialPhraseBank Sentences_*.txt, or sent_{train,valid}.csv',
  )
  .option('--limit <n>', 'N examples spread evenly over the set')
  .addOption(
    new Option(
      '--split <which>',
      'test = the held-out half (the classifier head never saw it), all = every example',
    )
      .choices(['test', 'all'])
      .default('test'),
  )
  .option('--json', 'machine-readable report')
  .action(async (opts) => (await import('./commands/sentiment.ts')).evalCommand(opts));

sentiment
  .command('train-head')
  .description(
    "train the local model's classifier head on the train half of labelled sets (default: CryptoLin, PhraseBank 75Agree)",
  )
  .option('--dataset <file...>', 'labelled sets (their train halves are used)')
  .addOption(new Option('--model-path <file.gguf>', 'GGUF weights').env('CRYPTOCAST_LLM_MODEL'))
  .option('--output <file.json>', 'where to write the head (default: beside the weights)')
  .option(
    '--threads <n>',
    'CPU threads of the model (default: CRYPTOCAST_LLM_THREADS, else the usable CPUs up to the math cores; 1 on a machine another job keeps busy)',
  )
  .option(
    '--limit <n>',
    'N examples per set, spread evenly over its train half (a quick check, not the shipped head)',
  )
  .action(async (opts) => (await import('./commands/sentiment.ts')).trainHeadCommand(opts));

/** Flags shared by `evaluate` and `train`: where the data comes from, and how the walk-forward runs. */
const walkForwardOptions = (cmd: Command) =>
  cmd
    .option(
      '--candles <path>',
      'candle file or folder (OHLCV CSV, cryptocast candles output, Binance klines)',
    )
    .option('--pair <pair>', '--candles: pair, when the file does not say')
    .option('--news <file>', '--candles: join point-in-time news features from a news recording')
    .addOption(
      new Option('--sentiment <backend>', '--news: sentiment backend (answers cached)')
        .choices(['local', 'openai', 'lexicon'])
        .default('local'),
    )
    .option('--horizon <duration>', 'how far ahead to predict', '5m')
    .option('--folds <n>', 'walk-forward test folds', '5')
    .addOption(
      new Option(
        '--mode <mode>',
        'training window: all history so far, or a fixed-length window (with --every: see --window)',
      )
        .choices(['expanding', 'rolling'])
        .default('expanding'),
    )
    .option('--purge <duration>', 'gap between training and test (default and minimum: the horizon)')
    .option(
      '--every <duration>',
      'refit every this long over the same test span (e.g. 7d: the trainer service’s schedule) instead of --folds blocks',
    )
    .option('--window <duration>', 'with --every: train on the latest this long only (e.g. 60d)')
    .option(
      '--point-windows <list>',
      'the point model is the mean of models fitted on these training windows (default all,60d; all = the whole window)',
    )
    .option('--trials <n>', 'Optuna: at most this many trials (within --tune-seconds)', '200')
    .option('--seed <n>', 'random seed (XGBoost, Optuna)', '42')
    .option('--json', 'machine-readable output');

walkForwardOptions(
  program
    .command('evaluate')
    .description('walk-forward evaluation of the model against persistence, drift and linear baselines'),
)
  .option('--tune-seconds <s>', 'Optuna budget before the folds (0: default parameters)', '0')
  .option(
    '--predictions <file.csv>',
    `write every out-of-sample prediction (${PREDICTIONS_CSV_COLUMNS.join(',')})`,
  )
  .option(
    '--history <path>',
    'earlier candles (file or folder) as the initial training window: the folds test --candles only',
  )
  .option('--figures <dir>', 'draw the figures (PNG) into this folder')
  .option(
    '--adaptive-conformal',
    'score the band as the live predictor publishes it with online adaptive conformal inference',
  )
  .option('--aci-gamma <g>', '--adaptive-conformal: learning rate γ (default 0.001)')
  .option('--aci-window <n>', '--adaptive-conformal: matured scores kept per pair (default 10080)')
  .option(
    '--shrinkage',
    'score the point forecast shrunk toward persistence by its recent matured errors (the predictor’s gate)',
  )
  .action(async (opts) => {
    if (opts.candles === undefined) throw new UsageError('evaluate needs --candles FILE|FOLDER');
    return (await import('./commands/train.ts')).evaluateCommand(opts);
  });

const registryOptions = (cmd: Command) =>
  cmd
    .addOption(
      new Option('--registry <url>', 'model registry: a directory, or mlflow+http://host:port')
        .env('CRYPTOCAST_REGISTRY')
        .default(DEFAULT_REGISTRY),
    )
    .addOption(
      new Option('--name <name>', 'registered model name')
        .env('CRYPTOCAST_MODEL_NAME')
        .default(DEFAULT_MODEL_NAME),
    );

registryOptions(
  walkForwardOptions(
    program
      .command('train')
      .description('train, walk forward against baselines, register, and promote if the gate passes'),
  ),
)
  .addOption(
    new Option(
      '--store <url>',
      'train from the feature store instead of candle files (duckdb:PATH, postgres://…)',
    ).env('CRYPTOCAST_STORE_TRAIN'),
  )
  .option('--pairs <list>', '--store: pairs (default: every pair in the store)')
  // train's alone: evaluate, which has no --store, listed it and refused it whenever it was given.
  .option('--with-news', '--store: also the news features the store holds (feature-writer --with-news)')
  .option('--days <n>', '--store: the latest N days', '30')
  .option('--tune-seconds <s>', 'Optuna budget (0: default parameters)', TUNE_SECONDS)
  .option('--gate-alpha <p>', 'gate: Diebold–Mariano significance level', String(DEFAULT_GATE.alpha))
  .option(
    '--gate-min-skill <x>',
    'gate: minimum skill per pair over persistence and over the best baseline',
    String(DEFAULT_GATE.minSkill),
  )
  .option(
    '--champion-margin <x>',
    'gate: required relative MAE improvement over the champion',
    String(DEFAULT_GATE.championMargin),
  )
  .option(
    '--gate-interval-margin <x>',
    'gate: required relative interval-score improvement over persistence ± realised volatility',
    String(DEFAULT_GATE.intervalMargin),
  )
  .option(
    '--gate-coverage-tolerance <x>',
    "gate: largest distance of each pair's p10–p90 coverage from 80 % (1: off)",
    String(DEFAULT_GATE.coverageTolerance),
  )
  .action(async (opts, cmd: Command) => {
    // Two sources named on the command line: one was silently ignored (--candles won, --store's --days with it).
    // CRYPTOCAST_STORE_TRAIN in the environment stays a default that an explicit --candles overrides.
    if (opts.candles !== undefined && cmd.getOptionValueSource('store') === 'cli')
      throw new UsageError(
        'train takes its rows from --candles FILE|FOLDER or from --store URL, not both: give one',
      );
    return (await import('./commands/train.ts')).trainCommand(opts);
  });

registryOptions(
  program
    .command('backtest')
    .description(
      'a registered model as it is (no refit) on candles it never saw, against the same baselines as evaluate',
    ),
)
  .requiredOption('--model <version>', 'champion, challenger, N or vN')
  .requiredOption(
    '--candles <path>',
    'candle file or folder (OHLCV CSV, cryptocast candles output, Binance klines)',
  )
  .option('--pair <pair>', 'pair, when the file does not say')
  .option(
    '--as-pair <pair>',
    'treat the candles’ pair as this trained pair (BTC/USDT), or map several: BTC/USD=BTC/USDT,ETH/USD=ETH/USDT',
  )
  .option('--horizon <duration>', 'refused unless it is the model’s own')
  .option(
    '--predictions <file.csv>',
    `write every prediction (${PREDICTIONS_CSV_COLUMNS.join(',')}; fold = the day)`,
  )
  .option('--figures <dir>', 'draw the figures (PNG) into this folder')
  .option(
    '--adaptive-conformal',
    'score the band as the live predictor publishes it with online adaptive conformal inference',
  )
  .option('--aci-gamma <g>', '--adaptive-conformal: learning rate γ (default 0.001)')
  .option('--aci-window <n>', '--adaptive-conformal: matured scores kept per pair (default 10080)')
  .option(
    '--shrinkage',
    'score the point forecast shrunk toward persistence by its recent matured errors (the predictor’s gate)',
  )
  .option('--json', 'machine-readable output')
  .action(async (opts) => (await import('./commands/backtest.ts')).backtestCommand(opts));

const models = program.command('models').description('the model registry: versions, champion, challenger');
registryOptions(models.command('list'))
  .description('every version with its skill and gate result')
  .option('--json', 'machine-readable output')
  .action(async (opts) => (await import('./commands/models.ts')).listCommand(opts));
registryOptions(models.command('show'))
  .description("a version's card: lineage, parameters, metrics per fold (default: the champion)")
  .argument('[version]', 'N, vN, champion or challenger')
  .action(async (version, opts) => (await import('./commands/models.ts')).showCommand(version, opts));
registryOptions(models.command('promote'))
  .description('make a version the champion (never one worse than persistence)')
  .argument('<version>', 'N, vN or challenger')
  .option('--reason <text>', 'recorded in the alias history')
  .action(async (version, opts) => (await import('./commands/models.ts')).promoteCommand(version, opts));
registryOptions(models.command('rollback'))
  .description('point the champion back at the previous one')
  .option('--reason <text>', 'recorded in the alias history')
  .action(async (opts) => (await import('./commands/models.ts')).rollbackCommand(opts));

// Every flag's value checked as commander reads it (flags.ts): by the binary, and by a test parsing in-process.
checkFlagValues(program);

/**
 * The program, for a test that parses command lines with it in this process, stopped before a command starts
 * (test/support/cli-in-process.ts): the flags, their checks and the refusals' lines are the binary's own.
 */
export { program };

/** The status commander's own exits end with: 0 after --help or --version, CC_ERR_USAGE's (2) for every refusal. */
export function commanderExitStatus(err: CommanderError): number {
  return err.exitCode === 0 ? 0 : ERR.USAGE.exitCode;
}

// A command whose work stalls on a promise that never settles would otherwise end with status 0 and no word.
let settled = false;

/**
 * How the command ends on an error. A catalogued error (bad input, a component that failed): its message and hint, its
 * exit status (2 for input, 1 for a component), no stack. Anything else is a bug: the stack, exit 1. Always redacted.
 */
function exitWith(err: unknown): never {
  settled = true;
  if (err instanceof CryptocastError) {
    process.stderr.write(
      `cryptocast: ${redactSecrets(err.message)} [${err.code}]${err.hint ? `\n  hint: ${err.hint}` : ''}\n`,
    );
    process.exit(err.exitCode);
  }
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`cryptocast: ${redactSecrets(text)}\n`);
  process.exit(1);
}

/** The binary: the process's handlers, then the command line. */
function runAsTheBinary(): void {
  process.once('beforeExit', () => {
    if (settled) return;
    process.stderr.write(
      'cryptocast: internal error: the command stopped before it finished (nothing left to wait for)\n',
    );
    process.exitCode = 1;
  });

  // A reader that stopped reading (`cryptocast topics list | head -2`): what is left cannot be delivered and nothing
  // is wrong with the command. End as a C program killed by SIGPIPE would (status 141, what a shell reports for it),
  // without the stack trace of a failed write that the safety net below would print.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') return exitWith(err);
    settled = true;
    process.exit(141);
  });

  // The safety net: an error no caller awaited (a background write, a timer's callback) ends the command the same way,
  // redacted, instead of Node's default print of the raw error and its properties (a connection URL with a password).
  process.on('unhandledRejection', exitWith);
  process.on('uncaughtException', exitWith);

  program
    .parseAsync(process.argv)
    .then(() => {
      settled = true;
    })
    .catch(exitWith);
}

// Run as the binary (bin/cryptocast, the images' entry point); imported by a test, nothing runs and no handler of the
// process is installed.
if (import.meta.main) runAsTheBinary();
