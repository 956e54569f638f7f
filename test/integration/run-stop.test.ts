import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { MODEL_COLUMNS } from '../../src/training/sources.ts';
import { registerModel, stumpModel } from '../support/champion.ts';
import { exitedWithin, runCli } from '../support/cli.ts';
import { countsInNewProcess } from '../support/duckdb-file.ts';
import { registerFlatChampion, replayRunArgs } from '../support/embedded-run.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Ctrl-C during a candle replay: the replay outruns the predictor and the monitor, and the first stop used to wait
 * for them to work through the whole backlog (a month: over a minute) before ending. Now the run ends at the stages'
 * next batch, keeps exactly what it reported as stored, and a second run on the same file completes the month.
 */
describe('cryptocast run: a stop during a candle replay', () => {
  it('ends at the next batch with what it reported stored; the next run completes the month', async () => {
    const dir = scratchDir('cc-stop-registry-');
    const model = stumpModel(MODEL_COLUMNS.length, [
      { f: Math.max(MODEL_COLUMNS.indexOf('ret_1m'), 0), c: 0, a: -0.4, b: 0.6 },
    ]);
    await registerModel(new LocalRegistry(dir), 'cryptocast-price', MODEL_COLUMNS, {
      model,
      p10: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: -8, b: -6 }]),
      p90: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: 6, b: 8 }]),
    });
    const env = { CRYPTOCAST_REGISTRY: dir, CRYPTOCAST_MODEL_NAME: 'cryptocast-price' };
    const file = join(scratchDir('cc-stop-'), 'cryptocast.duckdb');
    const args = replayRunArgs(file, '2022-05');
    const MONTH = 2 * 31 * 1440; // candles of the two pairs

    const stopped = runCli(args, env);
    await stopped.waitFor((e) => e.event === 'stored' && (e.predictions as number) > 0, 120_000);
    stopped.child.kill('SIGINT');
    const end = await stopped.waitFor((e) => e.event === 'stopped' || e.event === 'done', 60_000);
    // Stopped before the replay's end: the "stopped" summary, then exit 130 with the catalogued line.
    assert.equal(await stopped.exited, 130, stopped.stderr());
    assert.match(stopped.stderr(), /stopped before the replay ended.*\[CC_ERR_INTERRUPTED\]/);
    assert.match(stopped.stderr(), /run the same command again: it replays the rest/);
    assert.equal(end.event, 'stopped');
    assert.ok(
      (end.featureRows as number) < MONTH,
      `stopped before the month was worked through: ${end.featureRows}`,
    );
    const rows = (table: string, key: string) => countsInNewProcess(file, table, key);
    assert.deepEqual(rows('fs_technical_v1', 'pair, window_end'), {
      rows: end.featureRows,
      keys: end.featureRows,
    });
    assert.deepEqual(rows('predictions_v1', 'pair, window_end, model_version'), {
      rows: end.predictions,
      keys: end.predictions,
    });

    const complete = runCli(args, env);
    const done = await complete.waitFor((e) => e.event === 'done', 300_000);
    assert.equal(await complete.exited, 0, complete.stderr());
    assert.equal(done.featureRows, MONTH);
    assert.deepEqual(rows('fs_technical_v1', 'pair, window_end'), { rows: MONTH, keys: MONTH });
    assert.deepEqual(rows('predictions_v1', 'pair, window_end, model_version'), {
      rows: done.readyVectors,
      keys: done.readyVectors,
    });
  });

  // The other phases, with SIGTERM (what a service manager sends): while starting (the API is up, the replay not yet),
  // mid-replay, and while serving after the replay. Each ends "stopped" with exactly what it reported in the
  // file; a next run on the file gives the data of an uninterrupted one, nothing doubled. (kill -9 and its next run:
  // embedded-durability.test.ts.) A stop before the replay's end exits 130 (interrupted); one while serving after it
  // is the normal end of `--serve`: exit 0.
  it('SIGTERM while starting, mid-replay and while serving: what was reported is there; the next run completes', async () => {
    const env = await registerFlatChampion(scratchDir('cc-term-registry-'));
    const DAY = 2 * 1440; // candles of the two pairs
    const args = (file: string, extra: string[] = []) => replayRunArgs(file, '2022-05-09', extra);
    const rows = (file: string, table: string, key: string) => countsInNewProcess(file, table, key);
    const phases: {
      name: string;
      extra?: string[];
      when: (r: ReturnType<typeof runCli>) => Promise<unknown>;
    }[] = [
      {
        name: 'while starting',
        // Paced (a day in about 40 s): unpaced, a fast machine replayed the whole day between the API's line and the
        // signal, and "stopped before the day was done" failed on a run that had done nothing wrong.
        extra: ['--speed', '2000'],
        // Status lines go to stderr under --json: the API is up before the replay starts.
        when: (r) =>
          waitFor(
            'the API to start',
            () => r.stderr(),
            (e) => e.includes('dashboard on'),
            { timeoutMs: 60_000 },
          ),
      },
      {
        name: 'mid-replay',
        // Paced (a day in about 40 s), so that the replay is still going when the signal comes: at --speed 20000 the
        // day took 4 s, and a parent late to see the first "stored" line could signal a run already done.
        extra: ['--speed', '2000'],
        when: (r) => r.waitFor((e) => e.event === 'stored' && (e.featureRows as number) > 0, 60_000),
      },
      {
        name: 'while serving',
        extra: ['--serve'],
        when: (r) => r.waitFor((e) => e.event === 'serving', 60_000),
      },
    ];
    for (const phase of phases) {
      const file = join(scratchDir('cc-term-'), 'cryptocast.duckdb');
      const stopped = runCli(args(file, phase.extra), env);
      await phase.when(stopped);
      stopped.child.kill('SIGTERM');
      assert.equal(
        await exitedWithin(stopped, 60_000, `the stop ${phase.name}`),
        phase.name === 'while serving' ? 0 : 130,
        stopped.stderr(),
      );
      const end = stopped.events.find((e) => e.event === 'stopped');
      assert.ok(end, `${phase.name}: a "stopped" summary; got ${JSON.stringify(stopped.events.at(-1))}`);
      if (phase.name === 'while serving') assert.equal(end.featureRows, DAY);
      else assert.ok((end.featureRows as number) < DAY, `${phase.name}: stopped before the day was done`);
      assert.doesNotMatch(stopped.stderr(), /\n\s+at /, `${phase.name}: no stack trace`);
      assert.deepEqual(rows(file, 'fs_technical_v1', 'pair, window_end'), {
        rows: end.featureRows,
        keys: end.featureRows,
      });
      assert.deepEqual(rows(file, 'predictions_v1', 'pair, window_end, model_version'), {
        rows: end.predictions,
        keys: end.predictions,
      });

      const complete = runCli(args(file), env);
      const done = await complete.waitFor((e) => e.event === 'done', 120_000);
      assert.equal(await complete.exited, 0, complete.stderr());
      assert.deepEqual(rows(file, 'fs_technical_v1', 'pair, window_end'), { rows: DAY, keys: DAY });
      assert.deepEqual(rows(file, 'predictions_v1', 'pair, window_end, model_version'), {
        rows: done.readyVectors,
        keys: done.readyVectors,
      });
    }
  });
});
