import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDuration } from '../../../src/config/config.ts';
import { BUS_SERVICES } from '../../../src/config/service-env.ts';
import { ERR, type ErrorKind } from '../../../src/core/errors.ts';
import { exitedWithin, runCli } from '../../support/cli.ts';
import { parseCommandLine } from '../../support/cli-in-process.ts';
import { KRAKEN_2019_CSV, SHARED_DATA } from '../../support/data.ts';
import { scratchDir } from '../../support/scratch.ts';
import { waitFor } from '../../support/wait.ts';

/** The binary's refusal: its exit status, one line naming the problem with its code, no stack trace. */
function assertRefusal(code: number | string, stderr: string, kind: ErrorKind): string {
  assert.equal(code, kind.exitCode, stderr);
  assert.match(stderr, new RegExp(`\\[${kind.code}\\]`), stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  return stderr;
}

/**
 * The binary, in its own process, refuses: for what only a command that started says (a check in its action, a file
 * it opened, a store); within `ms` (a command that runs on fails).
 */
async function refused(args: string[], kind: ErrorKind, ms = 60_000): Promise<string> {
  const run = runCli(args);
  const code = await exitedWithin(run, ms, `cryptocast ${args.join(' ')} to be refused`);
  return assertRefusal(code, run.stderr(), kind);
}

/**
 * The same refusal where commander refuses as it reads the command line (an unknown command or flag, a value not
 * among the choices, a malformed value: src/cli/flags.ts), parsed in this process by the binary's own program
 * (test/support/cli-in-process.ts): the status the binary ends with and what it prints, in a millisecond where a
 * spawn takes a second or more. That both ways print the same is proven below ('…the binary and the parse…').
 */
async function refusedAsParsed(args: string[], kind: ErrorKind): Promise<string> {
  const { status, stderr } = await parseCommandLine(args);
  return assertRefusal(status, stderr, kind);
}

describe('the CLI refuses with a stable code', () => {
  it('commander’s own refusals: an unknown stage, a flag of another stage, a value not among the choices', async () => {
    await refusedAsParsed(['service', 'bogus'], ERR.USAGE);
    await refusedAsParsed(['service', 'candles', '--store', 'duckdb:x'], ERR.USAGE);
    await refusedAsParsed(['service', 'candles', '--interval', '7m'], ERR.USAGE);
  });

  // Commander's suggestion came on a second line before the code ("cryptocast: unknown option '--sever'" then
  // "(Did you mean --serve?) [CC_ERR_USAGE]"), and "(run with --help for usage)" was no hint line: the one line with
  // the code that every other refusal prints, then hints, as the README says.
  it('a mistyped flag or command: one line with the code, then the suggestion and the way to the flags as hints', async () => {
    for (const [args, first, suggestion] of [
      [['run', '--sever'], "unknown option '--sever'", '--serve'],
      [['serivce'], "unknown command 'serivce'", 'service'],
    ] as const) {
      const lines = (await refusedAsParsed([...args], ERR.USAGE)).trimEnd().split('\n');
      assert.equal(lines[0], `cryptocast: ${first} [CC_ERR_USAGE]`, lines.join('\n'));
      assert.deepEqual(lines.slice(1), [
        `  hint: did you mean ${suggestion}?`,
        '  hint: run the command with --help for its flags',
      ]);
    }
  });

  it('a refusal as the command line is read: the binary and the parse in this process end and print the same', async () => {
    for (const args of [
      ['run', '--sever'],
      ['service', 'candles', '--grace', '5'],
    ]) {
      const run = runCli(args);
      const code = await exitedWithin(run, 60_000, `cryptocast ${args.join(' ')} to be refused`);
      const parsed = await parseCommandLine(args);
      assert.deepEqual({ code, stderr: run.stderr() }, { code: parsed.status, stderr: parsed.stderr });
      assertRefusal(code, run.stderr(), ERR.USAGE);
    }
  });

  it('service api: --metrics-port equal to its --port (the API serves /metrics there already)', async () => {
    const stderr = await refused(
      ['service', 'api', '--bus', 'memory', '--port', '18433', '--metrics-port', '18433'],
      ERR.USAGE,
    );
    assert.match(stderr, /--metrics-port 18433 is also the API's --port/);
    assert.doesNotMatch(stderr, /another process/);
  });

  it('service api --metrics-port-only without --metrics-port: refused (/metrics would be served nowhere)', async () => {
    const stderr = await refused(
      ['service', 'api', '--bus', 'memory', '--port', '18434', '--metrics-port-only'],
      ERR.USAGE,
    );
    assert.match(stderr, /--metrics-port-only needs --metrics-port/);
  });

  it('train with both --candles and --store: refused, not one of them silently ignored', async () => {
    const dir = scratchDir('cc-usage-');
    const stderr = await refused(
      [
        'train',
        '--candles',
        join(dir, 'none'),
        '--store',
        `duckdb:${join(dir, 's.duckdb')}`,
        '--registry',
        dir,
      ],
      ERR.USAGE,
    );
    assert.match(stderr, /--candles FILE\|FOLDER or from --store URL, not both/);
  });

  it('backfill with both --output and --bus: refused, not the bus silently ignored (the trades went to the file)', async () => {
    const dir = scratchDir('cc-usage-');
    const stderr = await refused(
      [
        'backfill',
        '--exchange',
        'kraken',
        '--pair',
        'BTC/USD',
        '--since',
        '2025-11-10T12:00:00Z',
        '--output',
        join(dir, 'trades.csv'),
        '--bus',
        'kafka://127.0.0.1:1',
        '--base-url',
        'http://127.0.0.1:1',
        '--state',
        join(dir, 'state.json'),
      ],
      ERR.USAGE,
    );
    assert.match(stderr, /--output FILE\.csv or onto --bus URL, not both/);
  });

  it('run: pairs a replay does not hold are reported as where they came from (flag or CRYPTOCAST_PAIRS)', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    const args = ['run', '--replay', '2022-05-09', '--port', '0', '--store', store];
    const fromEnv = runCli(args, { CRYPTOCAST_PAIRS: 'BTC/USD' });
    assert.equal(
      await exitedWithin(fromEnv, 60_000, 'run to be refused'),
      ERR.PAIR.exitCode,
      fromEnv.stderr(),
    );
    assert.match(fromEnv.stderr(), /^cryptocast: CRYPTOCAST_PAIRS: --replay plays .*\[CC_ERR_PAIR\]/);
    assert.match(fromEnv.stderr(), /hint: unset CRYPTOCAST_PAIRS/);
    const fromFlag = await refused([...args, '--pairs', 'BTC/USD'], ERR.PAIR);
    assert.match(fromFlag, /^cryptocast: --pairs: --replay plays/);
  });

  // With 5-minute candles every one was dead-lettered at the features stage (they are of 1-minute candles), and run
  // ended "done", exit 0, with no prediction.
  it('run with CRYPTOCAST_INTERVAL other than 1m: CC_ERR_CONFIG before anything starts', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    const run = runCli(['run', '--port', '0', '--store', store], { CRYPTOCAST_INTERVAL: '5m' });
    assert.equal(await exitedWithin(run, 60_000, 'run to be refused'), ERR.CONFIG.exitCode, run.stderr());
    assert.match(run.stderr(), /^cryptocast: CRYPTOCAST_INTERVAL=5m: .*1-minute candles \[CC_ERR_CONFIG\]/);
    assert.match(
      run.stderr(),
      /hint: unset CRYPTOCAST_INTERVAL; for 5m candles of trades: cryptocast candles/,
    );
  });

  // The flag was reported as the variable: `run --interval 5m`, with no CRYPTOCAST_INTERVAL set, said
  // "CRYPTOCAST_INTERVAL=5m" and "unset CRYPTOCAST_INTERVAL", a fix that changes nothing.
  it('run --interval 5m: the refusal names the flag, not the environment variable', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    const run = runCli(['run', '--port', '0', '--store', store, '--interval', '5m'], {
      CRYPTOCAST_INTERVAL: undefined,
    });
    assert.equal(await exitedWithin(run, 60_000, 'run to be refused'), ERR.USAGE.exitCode, run.stderr());
    // A flag's value out of range: CC_ERR_USAGE, as for every flag (the variable's: CC_ERR_CONFIG, above).
    assert.match(run.stderr(), /^cryptocast: --interval 5m: .*1-minute candles \[CC_ERR_USAGE\]/);
    assert.match(run.stderr(), /hint: leave out --interval; for 5m candles of trades: cryptocast candles/);
    assert.doesNotMatch(run.stderr(), /CRYPTOCAST_INTERVAL/);
  });

  // --feeds is read only by a live run: `run --replay 2022-05 --feeds URL` (as the README's CLI block showed it)
  // replayed the recorded news and never polled the feeds, without a word.
  it('run --feeds without --source live: refused, not ignored', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    for (const replay of [['--replay', '2022-05-09'], []]) {
      const stderr = await refused(
        ['run', '--port', '0', '--store', store, ...replay, '--feeds', 'http://127.0.0.1:9/feed.xml'],
        ERR.USAGE,
      );
      assert.match(stderr, /^cryptocast: --feeds: .*--source live/);
    }
  });

  it('models: a version or a champion that is not there', async () => {
    const registry = scratchDir('cc-usage-');
    await refused(['models', 'show', '9', '--registry', registry], ERR.MODEL_VERSION);
    await refused(['models', 'rollback', '--registry', registry], ERR.MODEL_VERSION);
    await refused(['models', 'show', 'nine', '--registry', registry], ERR.USAGE);
  });

  it('a missing input file and a bad setting', async () => {
    const out = join(scratchDir('cc-usage-'), 'c.csv');
    await refused(['candles', '--input', '/nonexistent/trades.csv', '--output', out], ERR.INPUT);
    const run = runCli(['service', 'trades', '--bus', 'memory'], { CRYPTOCAST_EXCHANGES: 'kraken,nasdaq' });
    assert.equal(await run.exited, ERR.CONFIG.exitCode);
    assert.match(run.stderr(), /unknown exchange "nasdaq".*\[CC_ERR_CONFIG\]/);
  });
});

// A rules file that cannot be read was reported as "--alert-rules FILE" when it came from CRYPTOCAST_ALERT_RULES (the
// chart's way), with the hint "start without --alert-rules": a flag nobody gave.
describe('an alert rules file that cannot be read', () => {
  it('is CC_ERR_CONFIG naming where it was named: the flag, or CRYPTOCAST_ALERT_RULES', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    const monitor = ['service', 'monitor', '--bus', 'memory', '--store', store];
    const fromEnv = runCli(monitor, { CRYPTOCAST_ALERT_RULES: '/nonexistent.yaml' });
    const fromFlag = runCli([...monitor, '--alert-rules', '/nonexistent.yaml'], {
      CRYPTOCAST_ALERT_RULES: undefined,
    });
    for (const run of [fromEnv, fromFlag])
      assert.equal(
        await exitedWithin(run, 60_000, 'monitor to be refused'),
        ERR.CONFIG.exitCode,
        run.stderr(),
      );
    assert.match(
      fromEnv.stderr(),
      /^cryptocast: CRYPTOCAST_ALERT_RULES=\/nonexistent\.yaml: cannot read it \(ENOENT\) \[CC_ERR_CONFIG\]/,
    );
    assert.doesNotMatch(fromEnv.stderr(), /--alert-rules/);
    assert.match(
      fromFlag.stderr(),
      /^cryptocast: --alert-rules \/nonexistent\.yaml: cannot read it \(ENOENT\) \[CC_ERR_CONFIG\]/,
    );
    assert.doesNotMatch(fromFlag.stderr(), /CRYPTOCAST_ALERT_RULES/);
  });
});

describe('missing recordings', () => {
  it('run without the shared recordings (nor fetched klines): CC_ERR_INPUT, naming the file and the ways out', async () => {
    const empty = scratchDir('cc-usage-');
    const run = runCli(['run', '--store', `duckdb:${join(empty, 's.duckdb')}`], {
      CRYPTOCAST_SHARED_DATA: join(empty, 'shared'),
      CRYPTOCAST_DATA_DIR: join(empty, 'public'),
    });
    assert.equal(await exitedWithin(run, 60_000, 'run to be refused'), ERR.INPUT.exitCode);
    assert.match(run.stderr(), /the default trade recordings are not here .*\[CC_ERR_INPUT\]/);
    assert.match(run.stderr(), /hint: without the recordings: \.\/bin\/cryptocast data fetch/);
  });
});

describe('durations: a unit is required, and the trainer’s schedule has a floor', () => {
  it('service trainer --every 0s | 7 | 30s and service candles --grace 5 are refused before anything starts', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    assert.match(
      await refused(['service', 'trainer', '--store', store, '--every', '0s'], ERR.USAGE, 20_000),
      /--every must be at least 1m/,
    );
    assert.match(
      await refusedAsParsed(['service', 'trainer', '--store', store, '--every', '7'], ERR.USAGE),
      /--every <duration>' argument '7' is invalid\. "7" has no unit/,
    );
    assert.match(
      await refused(['service', 'trainer', '--store', store, '--every', '30s'], ERR.USAGE, 20_000),
      /at least 1m/,
    );
    assert.match(
      await refusedAsParsed(['service', 'candles', '--bus', 'memory', '--grace', '5'], ERR.USAGE),
      /--grace.*"5" has no unit/,
    );
  });

  // The trainer read it with Number(): -1 (no tuning) and 1.5 (a budget of a second and a half) were taken; train
  // refused them.
  it('service trainer --tune-seconds -1 | 1.5: a whole number, as train wants, refused before anything starts', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    for (const bad of ['-1', '1.5'])
      assert.match(
        await refused(
          ['service', 'trainer', '--store', store, '--once', '--tune-seconds', bad],
          ERR.USAGE,
          20_000,
        ),
        new RegExp(`--tune-seconds must be a whole number, got "${bad.replace('.', '\\.')}"`),
      );
  });

  // The predictor serves technical features only, so a news model is never promoted: under the served name every
  // run's fit was wasted (kept as challenger) and the champion never refreshed.
  it('service trainer --with-news under the served model name is refused; under a name of its own it runs', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    for (const name of [[], ['--name', 'cryptocast-price']])
      assert.match(
        await refused(
          ['service', 'trainer', '--store', store, '--once', '--with-news', ...name],
          ERR.USAGE,
          20_000,
        ),
        /--with-news registers news models under "cryptocast-price", the model the predictor serves.*another --name/,
      );
    // Past the check: the run starts, and finds the (empty) store has nothing to train on.
    assert.match(
      await refused(
        ['service', 'trainer', '--store', store, '--once', '--with-news', '--name', 'news-research'],
        ERR.DATASET,
        60_000,
      ),
      /the feature store has no technical features yet/,
    );
  });

  it('service predictor --poll 5 | --max-staleness 5: a unit is required there too (they took seconds)', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    const predictor = ['service', 'predictor', '--bus', 'memory', '--store', store];
    for (const flag of ['--poll', '--max-staleness'])
      assert.match(
        await refusedAsParsed([...predictor, flag, '5'], ERR.USAGE),
        new RegExp(`${flag} <duration>' argument '5' is invalid\\. "5" has no unit`),
      );
    assert.match(await refused([...predictor, '--poll', '0s'], ERR.USAGE, 20_000), /--poll must be positive/);
  });

  // A delay past 2^31 − 1 ms (~24.8 days) makes Node fire after 1 ms: `--poll 25d` polled the registry every
  // millisecond, a `--timeout 30d` gave up at once. Refused as the flag is read; the longest a timer holds is taken.
  it('service predictor --poll 25d | topics create / dlq --timeout 25d: a duration longer than a timer holds is refused', async () => {
    const store = `duckdb:${join(scratchDir('cc-usage-'), 's.duckdb')}`;
    const predictor = ['service', 'predictor', '--bus', 'memory', '--store', store];
    const timerFlags: [string[], string][] = [
      [predictor, '--poll'],
      [['topics', 'create', '--bus', 'kafka://127.0.0.1:1'], '--timeout'],
      [['dlq', 'list', '--bus', 'kafka://127.0.0.1:1'], '--timeout'],
    ];
    for (const [command, flag] of timerFlags) {
      assert.match(
        await refusedAsParsed([...command, flag, '25d'], ERR.USAGE),
        new RegExp(`${flag} <duration>' argument '25d' is invalid\\. it must be at most 24d`),
      );
      assert.equal((await parseCommandLine([...command, flag, '24d'])).status, 'started', `${flag} 24d`);
    }
  });

  it('service news-signals --max-lag 60 | run --news-max-lag 60: the news lag takes a unit as well (it took seconds)', async () => {
    assert.match(
      await refusedAsParsed(['service', 'news-signals', '--bus', 'memory', '--max-lag', '60'], ERR.USAGE),
      /--max-lag <duration>' argument '60' is invalid\. "60" has no unit/,
    );
    assert.match(
      await refused(['service', 'news-signals', '--bus', 'memory', '--max-lag', '0s'], ERR.USAGE, 20_000),
      /--max-lag must be positive/,
    );
    assert.match(
      await refusedAsParsed(['run', '--news-max-lag', '60'], ERR.USAGE),
      /--news-max-lag <duration>' argument '60' is invalid\. "60" has no unit/,
    );
  });

  it('parseDuration: units ms, s, m, h, d; a bare number is refused, naming the flag', () => {
    assert.deepEqual(
      ['500ms', '5s', '2m', '1h', '7d', '1.5s'].map((t) => parseDuration(t)),
      [500, 5_000, 120_000, 3_600_000, 604_800_000, 1_500],
    );
    assert.throws(() => parseDuration('5', '--grace'), /^ConfigError: --grace: "5" has no unit/);
    assert.throws(() => parseDuration('0'), /has no unit/);
    assert.throws(() => parseDuration('5 seconds'), /not a duration/);
  });
});

describe('a bus URL the transport cannot use', () => {
  // On the command line a flag's value, refused as every malformed flag value is (CC_ERR_USAGE, src/cli/flags.ts); from
  // CRYPTOCAST_BUS a setting's (CC_ERR_CONFIG: 'CRYPTOCAST_BUS supplies it' below).
  it('is a usage error, not a stack trace: an unknown scheme, a port that is not a number', async () => {
    await refusedAsParsed(
      [
        'backfill',
        '--exchange',
        'kraken',
        '--pair',
        'BTC/USD',
        '--since',
        '2025-01-01T00:00:00Z',
        '--until',
        '2025-01-01T00:01:00Z',
        '--state',
        join(scratchDir('cc-usage-'), 'state.json'),
        '--bus',
        'foo',
      ],
      ERR.USAGE,
    );
    await refusedAsParsed(['service', 'candles', '--bus', 'kafka://localhost:abc'], ERR.USAGE);
    await refusedAsParsed(['service', 'candles', '--bus', 'kafka://localhost:99999'], ERR.USAGE);
  });
});

describe('topics create, a deploy step, ends', () => {
  it('a broker that does not answer within --timeout: CC_ERR_TOPICS (it used to wait for ever)', async () => {
    const run = runCli(['topics', 'create', '--bus', 'kafka://127.0.0.1:9', '--timeout', '2s']);
    assert.equal(await run.exited, ERR.TOPICS.exitCode, run.stderr());
    assert.match(run.stderr(), /did not answer within 2s.*\[CC_ERR_TOPICS\]/);
  });

  // As a Job's only process (PID 1) Node ignores a SIGTERM it has no handler for: a Job deleted while the broker was
  // away waited out the grace period for its SIGKILL. Here (not PID 1) the missing handler showed as death by SIGTERM.
  it('a stop while it waits for the broker: CC_ERR_INTERRUPTED (130), at once', async () => {
    const run = runCli(['topics', 'create', '--bus', 'kafka://127.0.0.1:9', '--timeout', '10m'], {
      CRYPTOCAST_LOG_LEVEL: 'info',
    });
    await waitFor(
      'the broker wait to begin',
      async () => run.stderr(),
      (e) => /kafka is unavailable/.test(e),
      {
        timeoutMs: 60_000,
      },
    );
    run.child.kill('SIGTERM');
    assert.equal(
      await exitedWithin(run, 60_000, 'topics create to stop'),
      ERR.INTERRUPTED.exitCode,
      run.stderr(),
    );
    assert.match(run.stderr(), /interrupted: stopped before the topics were created \[CC_ERR_INTERRUPTED\]/);
  });
});

describe('the safety net for an error nobody awaited', () => {
  it('ends the command with exit 1 and the error redacted (Node alone would print the password in the URL)', async () => {
    // Loaded before the CLI, as a background write that fails. The command (news from a feed nobody serves) would
    // otherwise run for ever.
    const preload = `data:text/javascript,${encodeURIComponent(
      // Once the CLI's handlers are installed (or after 3 s without: the former code had none, and Node's own
      // handler printed the raw message), a promise rejects with nobody to catch it.
      "const pw = ['hun', 'ter2'].join(''); const t0 = Date.now();" + // not in the stack's copy of this source
        " const t = setInterval(() => { if (process.listenerCount('unhandledRejection') > 0 || Date.now() - t0 > 3000) {" +
        " clearInterval(t); Promise.reject(new Error('background write failed: postgres://cryptocast:' + pw + '@db:5432/x')); } }, 1);",
    )}`;
    const run = runCli(['service', 'news', '--bus', 'memory', '--feeds', 'http://127.0.0.1:9/feed.xml'], {
      NODE_OPTIONS: `--import=${preload}`,
    });
    const code = await run.exited;
    const stderr = run.stderr();
    assert.equal(code, 1, stderr);
    assert.match(stderr, /cryptocast: Error: background write failed: postgres:\/\/\S*@db:5432\/x/);
    assert.doesNotMatch(stderr, /hunter2/);
  });
});

describe('evaluate, train and backtest check every flag before loading anything', () => {
  // Candles that are not there: a flag checked first is what the command names; checked after the data (which
  // takes 16 s on the shared folder), the missing candles would be named instead.
  const missing = join(tmpdir(), 'cc-no-such-candles.csv');

  it('evaluate/train: bad --folds, --trials, --seed, --tune-seconds, --aci-gamma, --aci-window, --purge', async () => {
    // Malformed: refused as the flags are read (in this process); in range only for the command (its own process).
    const malformed: [string[], RegExp][] = [
      [['--folds', 'abc'], /--folds <n>' argument 'abc' is invalid\. it must be a whole number/],
      [['--trials', '1.5'], /--trials/],
      [['--seed', '-1'], /--seed/],
      [['--tune-seconds', 'x'], /--tune-seconds/],
      [['--purge', '5'], /--purge <duration>' argument '5' is invalid\. "5" has no unit/],
    ];
    for (const [flags, message] of malformed)
      for (const cmd of ['evaluate', 'train'])
        assert.match(await refusedAsParsed([cmd, '--candles', missing, ...flags], ERR.USAGE), message);
    for (const cmd of ['evaluate', 'train'])
      assert.match(await refused([cmd, '--candles', missing, '--folds', '0'], ERR.USAGE), /--folds/);
    assert.match(
      await refusedAsParsed(
        ['evaluate', '--candles', missing, '--adaptive-conformal', '--aci-window', 'ten'],
        ERR.USAGE,
      ),
      /--aci-window/,
    );
    assert.match(
      await refused(
        ['evaluate', '--candles', missing, '--adaptive-conformal', '--aci-gamma', '2'],
        ERR.USAGE,
      ),
      /--aci-gamma/,
    );
  });

  it('evaluate/train: --mode rolling with --every (whose window is --window) is refused, not run on all history', async () => {
    for (const cmd of ['evaluate', 'train'])
      assert.match(
        await refused([cmd, '--candles', missing, '--mode', 'rolling', '--every', '7d'], ERR.USAGE),
        /--mode rolling does not apply to --every .*give --window/,
      );
  });

  it('train/evaluate: a news recording goes with --candles, the store’s news with --store (a file given with --store was never read)', async () => {
    assert.match(
      await refused(['train', '--store', 'duckdb:/nonexistent/x.duckdb', '--news', 'news.csv'], ERR.USAGE),
      /--news FILE joins a news recording to --candles; with --store, --with-news/,
    );
    assert.match(
      await refused(['train', '--candles', missing, '--with-news'], ERR.USAGE),
      /--with-news reads a feature store's news features/,
    );
    // evaluate reads no store: the flag is not one of its own (its help listed it).
    assert.match(
      await refusedAsParsed(['evaluate', '--candles', missing, '--with-news'], ERR.USAGE),
      /unknown option '--with-news'/,
    );
  });

  it('train: a registry it cannot use is said before the data is loaded', async () => {
    const file = join(scratchDir('cc-reg-'), 'registry');
    writeFileSync(file, 'not a folder\n');
    const stderr = await refused(['train', '--candles', KRAKEN_2019_CSV, '--registry', file], ERR.REGISTRY);
    assert.match(stderr, /is not a folder/);
    assert.doesNotMatch(stderr, /dataset:/, 'refused before the candles were read');
  });

  it('backtest: bad --aci-gamma, --aci-window, --horizon before the registry and the candles', async () => {
    const registry = scratchDir('cc-usage-');
    const args = ['backtest', '--model', 'champion', '--candles', missing, '--registry', registry];
    assert.match(await refused([...args, '--aci-gamma', '2'], ERR.USAGE), /--aci-gamma/);
    assert.match(await refused([...args, '--aci-window', '0'], ERR.USAGE), /--aci-window/);
    assert.match(
      await refusedAsParsed([...args, '--horizon', '5'], ERR.USAGE),
      /--horizon <duration>' argument '5' is invalid\. "5" has no unit/,
    );
  });
});

describe('one kind, one code, whatever the command', () => {
  it('a pair that is not one: CC_ERR_PAIR from every command with --pair, --pairs or --as-pair', async () => {
    const d = scratchDir('cc-usage-');
    const zip = join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
    );
    const store = `duckdb:${join(d, 's.duckdb')}`;
    const commands = [
      // USAGE before
      [
        'backfill',
        '--exchange',
        'kraken',
        '--pair',
        'foo',
        '--since',
        '2025-01-01T00:00:00Z',
        '--state',
        join(d, 'b.json'),
        '--output',
        join(d, 'b.csv'),
      ],
      // INPUT before
      ['candles', '--input', KRAKEN_2019_CSV, '--pair', 'foo', '--output', join(d, 'c.csv')],
      ['features', '--candles', zip, '--pair', 'foo', '--output', join(d, 'f.csv')],
      ['evaluate', '--candles', zip, '--pair', 'foo'],
      ['backtest', '--model', 'champion', '--candles', zip, '--pair', 'foo', '--registry', join(d, 'r')],
      // taken as it was before (a mapping to a pair no model has)
      ['backtest', '--model', 'champion', '--candles', zip, '--as-pair', 'foo', '--registry', join(d, 'r')],
      // CONFIG before
      ['run', '--pairs', 'foo', '--port', '0', '--store', store],
      ['service', 'trades', '--pairs', 'foo', '--bus', 'memory'],
      // DATASET before (the store read with a pair nobody has)
      ['train', '--store', store, '--pairs', 'foo', '--registry', join(d, 'r')],
    ];
    for (const args of commands) assert.match(await refused(args, ERR.PAIR), /"foo"|"FOO"/);
  });

  it('a version that is not registered: CC_ERR_MODEL_VERSION from backtest --model as from models show (it was USAGE)', async () => {
    const registry = scratchDir('cc-usage-');
    const reg = ['--registry', registry];
    await refused(['models', 'show', '99', ...reg], ERR.MODEL_VERSION);
    await refused(['models', 'promote', '99', ...reg], ERR.MODEL_VERSION);
    await refused(['backtest', '--model', '99', '--candles', KRAKEN_2019_CSV, ...reg], ERR.MODEL_VERSION);
  });
});

describe('a service without a bus', () => {
  it('is refused with CC_ERR_CONFIG and a hint, every stage that reads or writes topics (it ran on a bus of its own)', async () => {
    const env = { CRYPTOCAST_BUS: '' }; // the suite's environment may name one
    for (const name of BUS_SERVICES) {
      const run = runCli(['service', name], env);
      const code = await exitedWithin(run, 60_000, `service ${name} without a bus to be refused`);
      assert.equal(code, ERR.CONFIG.exitCode, run.stderr());
      assert.match(
        run.stderr(),
        new RegExp(
          `service ${name} needs a bus.*\\[CC_ERR_CONFIG\\]\\n  hint: give --bus kafka://host:9092 or set CRYPTOCAST_BUS`,
        ),
      );
    }
  });

  it('CRYPTOCAST_BUS supplies it (here one the transport refuses, so nothing starts), and --bus memory stays possible', async () => {
    const run = runCli(['service', 'candles'], { CRYPTOCAST_BUS: 'kafka://localhost:abc' });
    await exitedWithin(run, 60_000, 'service candles to be refused');
    assert.doesNotMatch(run.stderr(), /needs a bus/);
    assert.match(run.stderr(), /localhost:abc.*\[CC_ERR_CONFIG\]/);
    // At info level, whatever NODE_ENV=test sets: the "running" line is what is waited for.
    const memory = runCli(['service', 'candles', '--bus', 'memory'], { CRYPTOCAST_LOG_LEVEL: 'info' });
    try {
      await waitFor('the service to run', memory.stderr, (e) => /running/.test(e), {
        timeoutMs: 60_000,
        everyMs: 100,
      });
    } finally {
      memory.child.kill('SIGTERM'); // also when the wait failed: a service left running holds the test file open
    }
    assert.equal(await exitedWithin(memory, 30_000, 'the service to stop'), 0, memory.stderr());
  });
});
