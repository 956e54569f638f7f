import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { TRADE_FILE_FORMATS } from '../../../src/ingestion/files/types.ts';
import { PREDICTIONS_CSV_COLUMNS } from '../../../src/training/predictions-csv.ts';
import { CLI } from '../../support/cli.ts';

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
