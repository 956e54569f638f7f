import { type Command, Option } from 'commander';
import { TRAINER_DAYS, TRAINER_EVERY, TUNE_SECONDS } from '../training/trainer-service.ts';
import { backendOptions, flag } from './options.ts';

/**
 * `cryptocast service <name>`: one subcommand per pipeline stage, each with only the flags it reads
 * (`cryptocast service candles --help` shows candles' flags), the shared ones declared once in options.ts. Every
 * stage runs until SIGINT/SIGTERM (see commands/service.ts); `--metrics-port` serves its metrics and probes.
 */
export function addServiceCommands(program: Command): void {
  const service = program
    .command('service')
    .description('run one pipeline stage as its own process (on Kafka in production)');
  const stage = (name: string, description: string, withBus = true) => {
    const cmd = service.command(name).description(description);
    if (withBus) cmd.addOption(flag.bus());
    return cmd;
  };
  // A refusal of the alert rules file names where it was named: one from CRYPTOCAST_ALERT_RULES was reported as
  // --alert-rules, a flag nobody gave.
  const run = (name: string) => async (opts: object, cmd: Command) =>
    (await import('./commands/service.ts')).service(name, {
      ...opts,
      alertRulesSetting:
        cmd.getOptionValueSource('alertRules') === 'env' ? 'CRYPTOCAST_ALERT_RULES' : '--alert-rules',
    } as never);

  stage('trades', 'live or recorded trades → the trades topic')
    .addOption(flag.source('where trades come from', 'live'))
    .addOption(flag.data('--source replay: file(s) or folder to replay (default: the shared recordings)'))
    .addOption(flag.speed())
    .addOption(flag.pairs('--source live: pairs to follow, comma separated (BTC/USD,ETH/USD)'))
    .addOption(flag.maxPriceFactor())
    .addOption(flag.metricsPort())
    .action(run('trades'));

  stage('candles', 'trades → 1-minute (or --interval) candles on the candles topic')
    .addOption(flag.interval())
    .addOption(flag.grace())
    .addOption(flag.latePolicy())
    .option('--group <id>', 'consumer group (instances in one group split the partitions)', 'candles')
    .addOption(flag.metricsPort())
    .action(run('candles'));

  stage('features', 'candles → technical feature vectors on the features topic')
    .addOption(flag.maxPriceFactor())
    .addOption(flag.metricsPort())
    .action(run('features'));

  stage('feature-writer', 'feature vectors → the feature store')
    .addOption(flag.store())
    .option('--with-news', 'also store per-coin news sentiment features (from news.signals)')
    .addOption(flag.metricsPort())
    .action(run('feature-writer'));

  stage('news', 'news items (RSS/Atom, CryptoPanic with CRYPTOPANIC_TOKEN, or a recording) → the news topic')
    .addOption(flag.source('where news comes from', 'live'))
    .option('--data <path>', '--source replay: the news recording (default: the shared one)')
    // The variable through commander, as run's --feeds: a bad URL in it is refused before the service starts (it was a
    // TypeError from the RSS source, with its stack).
    .addOption(
      new Option(
        '--feeds <urls>',
        '--source live: RSS/Atom feed URLs, comma separated (default CoinDesk, Cointelegraph, Decrypt, Bitcoin Magazine)',
      ).env('CRYPTOCAST_NEWS_FEEDS'),
    )
    .addOption(flag.metricsPort())
    .action(run('news'));

  backendOptions(stage('news-signals', 'news → per-coin sentiment on news.signals'))
    .option(
      '--max-lag <duration>',
      'items that waited longer than this are scored by the lexicon (the baseline) instead of the backend',
      '60s',
    )
    .addOption(
      flag.clock(
        'what an item waited: the wall clock, or the wait a live run would have had in event time (a replay of recorded news)',
      ),
    )
    .addOption(flag.metricsPort())
    .action(run('news-signals'));

  // The trainer reads the feature store and writes the registry: no topics, so no bus.
  stage('trainer', 'retrain from the feature store on a schedule, register, promote through the gate', false)
    .addOption(flag.store())
    .addOption(flag.registry())
    .addOption(flag.modelName())
    .addOption(flag.pairs('pairs to train on (default: every pair in the store)'))
    .option('--every <duration>', 'retrain this long after the previous run ended', TRAINER_EVERY)
    .option('--days <n>', 'train on the latest N days of the feature store', TRAINER_DAYS)
    .option('--tune-seconds <s>', 'Optuna budget per run (0: default parameters)', TUNE_SECONDS)
    .option('--once', 'one run, then exit (e.g. a Kubernetes CronJob)')
    .option(
      '--now',
      'first run at once (default: --every after the newest registered version, so a restart does not retrain)',
    )
    .option(
      '--with-news',
      'train with the news sentiment features too: only under another --name (the predictor serves technical features only)',
    )
    .addOption(flag.metricsPort())
    .action(run('trainer'));

  stage('predictor', "features → the champion's predictions (topic and predictions store)")
    .addOption(flag.store('predictions store: duckdb:PATH or postgres://…'))
    .addOption(flag.registry())
    .addOption(flag.modelName())
    .option('--max-staleness <duration>', 'skip feature vectors older than this (e.g. 2m, 90s)', '2m')
    .addOption(flag.clock('staleness by the wall clock, or by the newest windowEnd seen (replays)'))
    .option('--poll <duration>', 'how often the champion alias is read (e.g. 30s)', '30s')
    .option(
      '--no-adaptive-conformal',
      'publish the model’s own p10–p90 band (default: adjusted by online adaptive conformal inference, which learns from matured outcomes and is rebuilt from the feature store on start)',
    )
    .option(
      '--shrinkage',
      'shrink the predicted return toward persistence by its recent matured errors (a gate; λ per pair in the metrics)',
    )
    .addOption(flag.metricsPort())
    .action(run('predictor'));

  stage('api', 'the prediction API: REST, WebSocket, the dashboard')
    .addOption(new Option('--port <port>', 'HTTP port (0: any free port)').env('CRYPTOCAST_API_PORT'))
    .addOption(flag.store('predictions store it reads: duckdb:PATH or postgres://…'))
    .addOption(flag.registry())
    .addOption(flag.modelName())
    .addOption(flag.pairs('pairs loaded from the store on a cold start (default BTC/USD,ETH/USD)'))
    .addOption(
      flag.clock(
        'where /v1/quality’s windows and a history without `to` end: the wall clock, or the newest record (replays)',
      ),
    )
    .addOption(
      flag.metricsPort(
        'also serve /metrics, /health and /ready on this port (the API serves /metrics on --port)',
      ),
    )
    .option(
      '--metrics-port-only',
      'serve /metrics only on --metrics-port, not on the public --port (where anyone who reaches it could read it)',
    )
    // The monitor's rules file: /v1/quality serves its coverage band, which the dashboard colours coverage by.
    .addOption(flag.alertRules())
    .action(run('api'));

  stage('monitor', 'predictions + candles → error records, rolling quality, alerts')
    .addOption(flag.store('predictions and errors store: duckdb:PATH or postgres://…'))
    .addOption(flag.registry())
    .addOption(flag.modelName())
    .addOption(flag.clock('the clock of scoring and of the rolling windows: wall, or event (replays)'))
    .addOption(flag.alertRules())
    // The candle stage's policy: under revise the monitor keeps each minute's first emission for its restarts.
    .addOption(flag.latePolicy())
    .addOption(flag.metricsPort())
    .action(run('monitor'));

  stage('index-sink', 'predictions and error records → OpenSearch (or Elasticsearch) indices, for dashboards')
    .addOption(
      new Option(
        '--opensearch-url <url>',
        'OpenSearch, http(s)://host:9200 (credentials only from the environment)',
      ).env('CRYPTOCAST_OPENSEARCH_URL'),
    )
    .addOption(
      new Option('--index-prefix <prefix>', 'index and template name prefix')
        .env('CRYPTOCAST_INDEX_PREFIX')
        .default('cryptocast-'),
    )
    .addOption(flag.metricsPort())
    .action(run('index-sink'));
}
