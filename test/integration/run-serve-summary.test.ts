import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { registerFlatChampion, replayRunArgs, tempDirs } from '../support/embedded-run.ts';
import { waitFor } from '../support/wait.ts';

const dir = tempDirs();

/**
 * `run --serve` stopped after serving: its summary is of the replay. It used to take its seconds, and so its
 * candles-per-second rate, from the start to the Ctrl-C: a replay of 6 s served for a minute ended "in 66 s" at a tenth
 * of the rate it ran at.
 */
describe('cryptocast run --serve: the summary after serving', () => {
  it('counts the seconds of the replay, not of the serving after it', async () => {
    const env = await registerFlatChampion(dir('cc-serve-summary-registry-'));
    const file = join(dir('cc-serve-summary-'), 'cryptocast.duckdb');
    const spawnedAt = performance.now();
    const run = runCli(replayRunArgs(file, '2022-05-09', ['--serve']), env);
    const serving = await run.waitFor((e) => e.event === 'serving', 120_000);
    // The replay took at most this long (the process's start included).
    const servedFrom = performance.now();
    const untilServing = (servedFrom - spawnedAt) / 1000;
    // Served as long again, the API answering meanwhile (the serving time the summary must leave out), then stopped.
    await waitFor(
      'the API to have served as long as the replay took',
      async () => (await fetch(`http://127.0.0.1:${serving.port}/v1/health`)).status,
      (status) => status === 200 && performance.now() - servedFrom >= untilServing * 1000,
      { timeoutMs: 120_000, everyMs: 100 },
    );
    run.child.kill('SIGINT');
    assert.equal(await exitedWithin(run, 60_000, 'the stop while serving'), 0, run.stderr());
    const end = run.events.at(-1);
    assert.equal(end?.event, 'stopped', JSON.stringify(end));
    assert.ok(
      (end.seconds as number) <= untilServing,
      `the summary's ${end.seconds} s are of the replay, done within ${untilServing.toFixed(3)} s`,
    );
    const summary = /stopped: candle replay · [\d,]+ candles \([\d,]+\/s\).* in ([\d.]+) s/.exec(
      run.stderr(),
    );
    assert.ok(summary, run.stderr());
    assert.ok(Number(summary[1]) <= untilServing + 0.05, summary[0]);
  });
});
