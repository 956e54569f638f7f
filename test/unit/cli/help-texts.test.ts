import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StreamConfigSchema } from '../../../src/config/config.ts';
import { DEFAULT_KLINE_SYMBOLS } from '../../../src/data/locations.ts';
import { TRADE_FILE_FORMATS } from '../../../src/ingestion/files/types.ts';
import { PREDICTIONS_CSV_COLUMNS } from '../../../src/training/predictions-csv.ts';
import { CLI } from '../../support/cli.ts';
import { scratchDir } from '../../support/scratch.ts';

/** The help of a command, its wrapped lines joined again, so a column list broken over two lines still reads whole. */
function help(...args: string[]): string {
  return execFileSync(CLI, [...args, '--help'], { encoding: 'utf8' }).replace(/\s*\n\s*/g, ' ');
}

describe('--predictions: the help names the columns the file has', () => {
  for (const command of ['evaluate', 'backtest']) {
    it(`${command} --help`, () => {
      const text = help(command);
      assert.ok(text.includes(PREDICTIONS_CSV_COLUMNS.join(',')), text);
    });
  }
});

describe('candles --help lists the --format values', () => {
  it('every trade file format the readers know', () => {
    const text = help('candles');
    for (const f of TRADE_FILE_FORMATS) assert.ok(text.includes(`"${f}"`), `${f} in: ${text}`);
  });
});

describe('train and service trainer: no Optuna unless asked', () => {
  // The model shipped is the one ./bench/run quality measures (default parameters): docs/training.md.
  for (const command of [['train'], ['service', 'trainer']]) {
    it(`${command.join(' ')} --help`, () => {
      assert.match(
        help(...command),
        /--tune-seconds <s>\s+Optuna budget[^(]*\(0: default parameters\) \(default: "0"\)/,
      );
    });
  }
});

describe('--interval: the help lists what the command takes', () => {
  /** The help text of one flag: from its name to the next flag. */
  const flagHelp = (text: string, flag: string) =>
    /--interval <i>(.*?)(?= --[a-z])/.exec(text.slice(text.indexOf(flag)))![1]!;

  it('run takes only 1m: its help names no other interval (it listed 1m, 5m, 15m, 1h, and refused three)', () => {
    const text = flagHelp(help('run'), '--interval');
    assert.match(text, /1m only/);
    assert.doesNotMatch(text, /"5m"|"15m"|"1h"/, text);
  });

  it('service candles and candles make every interval, and list them', () => {
    for (const command of [['service', 'candles'], ['candles']])
      assert.match(flagHelp(help(...command), '--interval'), /choices: "1m", "5m", "15m", "1h"/);
  });

  it('run --interval 15m or 2m is refused before anything starts, naming the flag (CC_ERR_USAGE)', () => {
    for (const value of ['15m', '2m']) {
      const r = spawnSync(
        CLI,
        [
          'run',
          '--port',
          '0',
          '--store',
          `duckdb:${join(scratchDir('cc-help-'), 's.duckdb')}`,
          '--interval',
          value,
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, CRYPTOCAST_INTERVAL: '' },
        },
      );
      assert.equal(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`^cryptocast: --interval ${value}: .*1-minute candles \\[CC_ERR_USAGE\\]`),
      );
    }
  });
});

describe('--with-news: listed only where it can be used', () => {
  it('train --help lists it (with --store); evaluate, which reads no store, does not', () => {
    assert.match(help('train'), /--with-news\s+--store: also the news features the store holds/);
    assert.doesNotMatch(help('evaluate'), /--with-news/);
  });
});

describe('help texts say what the command does', () => {
  it('train --gate-min-skill: against the best baseline as well (gate rule 2), not persistence only', () => {
    assert.match(
      help('train'),
      /--gate-min-skill <x>\s+gate: minimum skill per pair over persistence and over the best baseline/,
    );
  });

  it('--speed: its placeholder says "max" is a value, as the default is (it said <n>)', () => {
    for (const command of [['run'], ['service', 'trades']])
      assert.match(help(...command), /--speed <factor\|max>\s+replay speed: "max" or a factor/);
  });

  it('dlq replay --to: required (dlq replay refuses to run without it, --dry-run too)', () => {
    assert.match(help('dlq', 'replay'), /--to <topic>\s+required: the topic/);
  });

  it('service news-signals --max-lag: late items go to the lexicon, as run --news-max-lag says', () => {
    assert.match(
      help('service', 'news-signals'),
      /--max-lag <duration>\s+items that waited longer than this are scored by the lexicon/,
    );
  });
});

describe('run --pairs: the help says what each mode takes without it', () => {
  // It said "pairs to follow, comma separated (BTC/USD,ETH/USD)": a live run's default, which a replay of recorded
  // files (every pair they hold) and a --replay of the klines (BTC/USDT, ETH/USDT) do not follow.
  it('live: the configured default; a replay: every pair its files hold; --replay: the recorded klines', () => {
    const text = /--pairs <list>(.*?)(?= --interval <i>)/.exec(help('run'))![1]!;
    const live = StreamConfigSchema.parse({}).pairs.join(',');
    const klines = DEFAULT_KLINE_SYMBOLS.map((s) => s.replace(/USDT$/, '/USDT')).join(',');
    assert.match(text, new RegExp(`live: ${live}\\b`), text);
    assert.match(text, /a replay: every pair its files hold/, text);
    assert.match(text, new RegExp(`--replay: ${klines}\\b`), text);
    assert.doesNotMatch(text, /separated \(BTC\/USD,ETH\/USD\)/, text);
  });
});
