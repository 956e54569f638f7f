import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { MODEL_COLUMNS } from '../../src/training/sources.ts';
import { registerModel, stumpModel } from '../support/champion.ts';
import { runCli } from '../support/cli.ts';
import { countsInNewProcess } from '../support/duckdb-file.ts';

/**
 * Ctrl-C during a candle replay: the replay outruns the predictor and the monitor, and the first stop used to wait
 * for them to work through the whole backlog (a month: over a minute) before ending. Now the run ends at the stages'
 * next batch, keeps exactly what it reported as stored, and a second run on the same file completes the month.
 */
describe('cryptocast run: a stop during a candle replay', () => {
  it('ends at the next batch with what it reported stored; the next run completes the month', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cc-stop-registry-'));
    const model = stumpModel(MODEL_COLUMNS.length, [
      { f: Math.max(MODEL_COLUMNS.indexOf('ret_1m'), 0), c: 0, a: -0.4, b: 0.6 },
    ]);
    await registerModel(new LocalRegistry(dir), 'cryptocast-price', MODEL_COLUMNS, {
      model,
      p10: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: -8, b: -6 }]),
      p90: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: 6, b: 8 }]),
    });
    const env = { CRYPTOCAST_REGISTRY: dir, CRYPTOCAST_MODEL_NAME: 'cryptocast-price' };
    const file = join(mkdtempSync(join(tmpdir(), 'cc-stop-')), 'cryptocast.duckdb');
    const args = [
      'run',
      '--json',
      '--port',
      '0',
      '--no-news',
      '--replay',
      '2022-05',
      '--store',
      `duckdb:${file}`,
    ];
    const MONTH = 2 * 31 * 1440; // candles of the two pairs

    const stopped = runCli(args, env);
    await stopped.waitFor((e) => e.event === 'stored' && (e.predictions as number) > 0, 120_000);
    stopped.child.kill('SIGINT');
    const end = await stopped.waitFor((e) => e.event === 'stopped' || e.event === 'done', 60_000);
    assert.equal(await stopped.exited, 0, stopped.stderr());
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
});
