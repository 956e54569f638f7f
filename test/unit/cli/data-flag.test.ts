import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { flag } from '../../../src/cli/options.ts';
import { addServiceCommands } from '../../../src/cli/service-commands.ts';

/** What `--data` parses to, on a command of its own (no action runs). */
function dataOf(...args: string[]): unknown {
  const cmd = new Command()
    .exitOverride()
    .addOption(flag.data('files'))
    .action(() => {});
  cmd.parse(args, { from: 'user' });
  return cmd.opts().data;
}

describe('--data (run, service trades)', () => {
  it('adds every repeated flag to the list: given twice, the first had been dropped without a word', () => {
    assert.equal(dataOf('--data', 'a.csv', '--data', 'b.csv,c'), 'a.csv,b.csv,c');
    assert.equal(dataOf('--data', 'folder'), 'folder');
    assert.equal(dataOf(), undefined);
  });

  it('is the flag `service trades` takes', () => {
    const program = new Command().exitOverride();
    addServiceCommands(program);
    const trades = program.commands
      .find((c) => c.name() === 'service')!
      .commands.find((c) => c.name() === 'trades')!;
    const data = trades.options.find((o) => o.long === '--data')!;
    assert.match(data.description, /comma separated or repeated/);
  });
});
