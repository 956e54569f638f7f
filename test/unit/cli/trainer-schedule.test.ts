import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalRegistry } from '../../../src/training/registry/local.ts';
import { type ModelFiles, registerModel, stumpModel } from '../../support/champion.ts';
import { runCli } from '../../support/cli.ts';
import { scratchDir } from '../../support/scratch.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

const COLUMNS = ['rsi_14', 'ret_1m'];
const files = (): ModelFiles => ({
  model: stumpModel(COLUMNS.length, [{ f: 0, c: 50, a: -3, b: 5 }]),
  p10: stumpModel(COLUMNS.length, [], { base: -10, objective: 'reg:quantileerror' }),
  p90: stumpModel(COLUMNS.length, [], { base: 10, objective: 'reg:quantileerror' }),
});

/** Sets a registered version's creation time (what the trainer's schedule reads). */
function registeredAt(root: string, name: string, version: number, at: number): void {
  const file = join(root, name, 'versions', String(version), 'card.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), createdAt: at }));
}

/** Starts `service trainer --every 7d` on the registry, returns its "first run …" log line, and stops it. */
async function firstRunLine(dir: string, root: string): Promise<string> {
  const run = runCli(
    [
      'service',
      'trainer',
      '--store',
      `duckdb:${join(dir, 'features.duckdb')}`,
      '--registry',
      root,
      '--name',
      'price',
      '--every',
      '7d',
    ],
    { CRYPTOCAST_LOG_LEVEL: 'info' },
  );
  try {
    return (await waitFor(
      'the line that says when the first run comes',
      () =>
        run
          .stderr()
          .split('\n')
          .find((l) => /"msg":"first run/.test(l)),
      (l) => l !== undefined,
      { timeoutMs: 60_000, everyMs: 50 },
    ))!;
  } finally {
    run.child.kill('SIGTERM');
    await settlesWithin(run.exited, 60_000, 'the trainer to stop').finally(() => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    });
  }
}

describe('service trainer: the schedule counts runs that finished', () => {
  it('a version registered by a run killed before it moved an alias does not put the next run off by --every', async () => {
    const dir = scratchDir('cc-trainer-schedule-');
    const root = join(dir, 'registry');
    const registry = new LocalRegistry(root);
    const DAY = 86_400_000;
    await registerModel(registry, 'price', COLUMNS, files()); // v1, champion
    registeredAt(root, 'price', 1, Date.now() - 8 * DAY);
    // v2: registered an hour ago by a run killed between its registration and its alias move (neither champion nor
    // challenger, in no alias change). Its gate may have passed: the champion is still v1, eight days old.
    await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    registeredAt(root, 'price', 2, Date.now() - 3_600_000);
    assert.match(await firstRunLine(dir, root), /"msg":"first run now: v1 was registered over --every ago"/);
  });

  it('a version its run made challenger counts: the first run comes --every after it', async () => {
    const dir = scratchDir('cc-trainer-schedule-');
    const root = join(dir, 'registry');
    const registry = new LocalRegistry(root);
    const DAY = 86_400_000;
    await registerModel(registry, 'price', COLUMNS, files()); // v1, champion
    registeredAt(root, 'price', 1, Date.now() - 8 * DAY);
    const v2 = await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    await registry.setAlias('price', 'challenger', v2.version, 'refused by the gate');
    registeredAt(root, 'price', 2, Date.now() - 1.5 * DAY);
    assert.match(
      await firstRunLine(dir, root),
      /"msg":"first run in 5d \d+h: --every after v2 was registered/,
    );
  });
});
