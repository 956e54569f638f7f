import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { addServiceCommands } from '../../../src/cli/service-commands.ts';

function services(): Command {
  const program = new Command().exitOverride();
  addServiceCommands(program);
  return program.commands.find((c) => c.name() === 'service')!;
}

const flagsOf = (name: string) =>
  services()
    .commands.find((c) => c.name() === name)!
    .options.map((o) => o.long!)
    .sort();

describe('cryptocast service <name>', () => {
  it('has one subcommand per stage', () => {
    assert.deepEqual(
      services().commands.map((c) => c.name()),
      [
        'trades',
        'candles',
        'features',
        'feature-writer',
        'news',
        'news-signals',
        'trainer',
        'predictor',
        'api',
        'monitor',
        'index-sink',
      ],
    );
  });

  it('gives each stage only its own flags (and the flags tests and scripts pass keep working)', () => {
    assert.deepEqual(flagsOf('candles'), [
      '--bus',
      '--grace',
      '--group',
      '--interval',
      '--late-policy',
      '--metrics-port',
    ]);
    assert.deepEqual(flagsOf('trades'), [
      '--bus',
      '--data',
      '--max-price-factor',
      '--metrics-port',
      '--pairs',
      '--source',
      '--speed',
    ]);
    assert.deepEqual(flagsOf('features'), ['--bus', '--max-price-factor', '--metrics-port']);
    assert.deepEqual(flagsOf('feature-writer'), ['--bus', '--metrics-port', '--store', '--with-news']);
    assert.deepEqual(flagsOf('news'), ['--bus', '--data', '--feeds', '--metrics-port', '--source']);
    assert.ok(flagsOf('news-signals').includes('--backend') && flagsOf('news-signals').includes('--max-lag'));
    assert.ok(!flagsOf('trainer').includes('--bus'), 'the trainer uses no topic');
    for (const [stage, flags] of [
      [
        'trainer',
        [
          '--store',
          '--registry',
          '--name',
          '--every',
          '--days',
          '--tune-seconds',
          '--once',
          '--now',
          '--with-news',
        ],
      ],
      [
        'predictor',
        [
          '--store',
          '--registry',
          '--name',
          '--max-staleness',
          '--clock',
          '--poll',
          '--no-adaptive-conformal',
        ],
      ],
      ['api', ['--port', '--store', '--registry', '--name', '--pairs', '--clock', '--alert-rules']],
      ['monitor', ['--store', '--registry', '--name', '--clock', '--alert-rules']],
      ['index-sink', ['--bus', '--opensearch-url', '--index-prefix']],
    ] as const)
      for (const f of flags) assert.ok(flagsOf(stage).includes(f), `${stage} ${f}`);
    // The shipped schedule is the one ./bench/run quality measures: default parameters, no Optuna (docs/training.md).
    const trainer = services().commands.find((c) => c.name() === 'trainer')!;
    assert.equal(trainer.options.find((o) => o.long === '--tune-seconds')?.defaultValue, '0');
    for (const c of services().commands)
      assert.ok(
        c.options.some((o) => o.long === '--metrics-port'),
        `${c.name()} --metrics-port`,
      );
  });

  it('refuses a flag of another stage', () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
    addServiceCommands(program);
    assert.throws(
      () => program.parse(['service', 'candles', '--store', 'duckdb:x'], { from: 'user' }),
      (err: Error & { code?: string }) => err.code === 'commander.unknownOption',
    );
  });
});
