import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { registerFlatChampion, replayRunArgs, tempDirs } from '../support/embedded-run.ts';

const dir = tempDirs();

/**
 * `run --serve` on a port another process holds: it used to say "prediction API not started", replay, and end "done"
 * with exit 0 — the serving that --serve asks for never came. Now it is refused as a bad --port is (CC_ERR_CONFIG).
 */
describe('cryptocast run --serve: the port is taken', () => {
  it('is refused with CC_ERR_CONFIG, not a replay that ends without serving', async () => {
    const env = await registerFlatChampion(dir('cc-serve-port-registry-'));
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const file = join(dir('cc-serve-port-'), 'cryptocast.duckdb');
      const args = replayRunArgs(file, '2022-05-09', ['--serve']).map((a, i, all) =>
        all[i - 1] === '--port' ? String(port) : a,
      );
      const run = runCli(args, env);
      const code = await exitedWithin(run, 120_000, 'the run on a taken port');
      assert.equal(code, 2, run.stderr());
      assert.match(run.stderr(), /already in use by another process \[CC_ERR_CONFIG\]/);
      assert.equal(
        run.events.find((e) => e.event === 'done'),
        undefined,
        'no replay "done" without the serving',
      );
    } finally {
      holder.close();
    }
  });

  // Without --serve the run goes on without the API, as the README says — but the line said only "prediction API not
  // started: … already in use", not the hint every refusal of the port gives (another --port, 0: any free port).
  it('without --serve: the run goes on, and its line says how to have the API', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const file = join(dir('cc-port-taken-'), 'cryptocast.duckdb');
      const args = ['run', '--json', '--port', String(port), '--store', `duckdb:${file}`];
      const run = runCli(args, { CRYPTOCAST_REGISTRY: dir('cc-port-taken-registry-') });
      assert.equal(await exitedWithin(run, 120_000, 'the run on a taken port'), 0, run.stderr());
      assert.match(
        run.stderr(),
        /prediction API not started: --port \d+: 127\.0\.0\.1:\d+ is already in use by another process \(stop that process, or give another --port \(0: any free port\)\)/,
      );
      assert.ok(
        run.events.find((e) => e.event === 'done'),
        'the replay ran to its end',
      );
    } finally {
      holder.close();
    }
  });
});
