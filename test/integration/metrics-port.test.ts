import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.ts';
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
});
