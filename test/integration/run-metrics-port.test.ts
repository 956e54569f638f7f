import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CliRun, exitedWithin, liveRunOnKraken, runCli } from '../support/cli.ts';
import { tempDirs } from '../support/embedded-run.ts';
import { KrakenServer } from '../support/exchanges/kraken.ts';
import { waitFor } from '../support/wait.ts';

const dir = tempDirs();

/** A port the run printed on stderr, matched by `re` (its first group). */
async function printedPort(run: CliRun, re: RegExp, what: string): Promise<number> {
  const m = await waitFor(
    what,
    () => re.exec(run.stderr()),
    (x) => x !== null,
    { timeoutMs: 120_000 },
  );
  return Number(m![1]);
}

const get = async (port: number, path: string) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
};

/**
 * `cryptocast run --metrics-port`: the embedded process's metrics and probes on a port of their own, as every
 * `cryptocast service` has (the chart's embedded pod scrapes and probes it); with `--metrics-port-only` the API's port
 * no longer serves /metrics, as `service api --metrics-port-only`.
 */
describe('cryptocast run --metrics-port', () => {
  it('serves /metrics, /health and /ready there; with --metrics-port-only the API port has no /metrics', async () => {
    const srv = await new KrakenServer().listen();
    srv.heartbeatMs = 200;
    const run = liveRunOnKraken(srv, {
      pairs: 'BTC/USDT',
      file: join(dir('h94-metrics-port-'), 'cryptocast.duckdb'),
      flags: ['--metrics-port', '0', '--metrics-port-only'],
      env: { CRYPTOCAST_REGISTRY: dir('h94-metrics-registry-') },
    });
    try {
      const metricsPort = await printedPort(run, /metrics on port (\d+): /, 'the metrics port line');
      assert.equal((await get(metricsPort, '/health')).status, 200);
      // Ready once the stages run (503 "starting" before).
      await waitFor(
        '/ready on the metrics port',
        () => get(metricsPort, '/ready'),
        (r) => r.status === 200,
        {
          timeoutMs: 120_000,
        },
      );
      const apiPort = await printedPort(
        run,
        /dashboard on http:\/\/127\.0\.0\.1:(\d+)\//,
        'the dashboard line',
      );
      assert.notEqual(apiPort, metricsPort);
      const scrape = await get(metricsPort, '/metrics');
      assert.equal(scrape.status, 200);
      assert.match(scrape.text, /^cryptocast_\w+/m, 'the process metrics');
      assert.equal((await get(apiPort, '/metrics')).status, 404, 'not on the API port');
      assert.equal((await get(apiPort, '/v1/health')).status, 200, 'the API itself is served');
    } finally {
      run.child.kill('SIGTERM');
      await exitedWithin(run, 60_000, 'the live run to stop');
      await srv.close();
    }
  });

  it('refuses --metrics-port-only without --metrics-port, and the API port as metrics port, before anything starts', async () => {
    const store = `duckdb:${join(dir('h94-metrics-refused-'), 'cryptocast.duckdb')}`;
    const only = runCli(['run', '--metrics-port-only', '--store', store, '--no-news']);
    assert.notEqual(await exitedWithin(only, 60_000, 'the refusal'), 0);
    assert.match(only.stderr(), /--metrics-port-only needs --metrics-port/);
    const same = runCli(['run', '--port', '18794', '--metrics-port', '18794', '--store', store, '--no-news']);
    assert.notEqual(await exitedWithin(same, 60_000, 'the refusal'), 0);
    assert.match(same.stderr(), /--metrics-port 18794 is also the API's --port/);
  });
});
