import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/** A free TCP port (bound then released). */
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

describe('--metrics-port on a cryptocast service', () => {
  it('serves Prometheus /metrics, /health and /ready (200 once started), 405 for other methods', async () => {
    const port = await freePort();
    const svc = runCli(['service', 'candles', '--bus', 'memory', '--metrics-port', String(port)], {
      CRYPTOCAST_LOG_LEVEL: 'warn',
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const ready = await waitFor(
        'the service to be ready',
        () => fetch(`${base}/ready`).then((r) => r.status),
        (s) => s === 200,
        { timeoutMs: 60_000 },
      );
      assert.equal(ready, 200);
      assert.equal((await fetch(`${base}/health`)).status, 200);
      const text = await (await fetch(`${base}/metrics`)).text();
      assert.match(text, /^# TYPE cryptocast_records_consumed_total counter$/m);
      assert.match(text, /^cryptocast_consumer_lag_records\{topic="trades",group="candles"\} 0$/m);
      assert.match(text, /^# TYPE cryptocast_process_cpu_user_seconds_total counter$/m);
      assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      svc.child.kill('SIGTERM');
      assert.equal(await svc.exited, 0, svc.stderr());
    }
  });

  // The API served /metrics on its public port only, without a key: whoever reached the API read the process's
  // metrics. --metrics-port-only serves them on --metrics-port alone, as every other service does.
  it('service api --metrics-port-only: /metrics on --metrics-port, 404 on the public --port', async () => {
    const [apiPort, metricsPort] = [await freePort(), await freePort()];
    const dir = scratchDir('cc-api-metrics-');
    const args = ['service', 'api', '--bus', 'memory', '--store', `duckdb:${join(dir, 'p.duckdb')}`];
    const svc = runCli(
      [
        ...args,
        '--registry',
        join(dir, 'models'),
        '--port',
        String(apiPort),
        '--metrics-port',
        String(metricsPort),
        '--metrics-port-only',
      ],
      { CRYPTOCAST_LOG_LEVEL: 'warn' },
    );
    try {
      const api = `http://127.0.0.1:${apiPort}`;
      await waitFor(
        'the API to answer',
        () =>
          fetch(`${api}/v1/health`).then(
            (r) => r.status,
            () => 0,
          ),
        (s) => s === 200,
        { timeoutMs: 60_000 },
      );
      assert.equal((await fetch(`${api}/metrics`)).status, 404, 'not on the public port');
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(text, /^# TYPE cryptocast_http_request_duration_seconds histogram$/m);
      assert.match(text, /^cryptocast_websocket_clients 0$/m, 'the WebSocket clients still counted');
    } finally {
      svc.child.kill('SIGTERM');
      assert.equal(await svc.exited, 0, svc.stderr());
    }
  });
});
