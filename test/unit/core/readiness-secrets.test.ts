import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { reportDependency } from '../../../src/core/dependency.ts';
import { startMetricsServer } from '../../../src/core/metrics-server.ts';
import { readiness } from '../../../src/core/readiness.ts';
import { MlflowClient } from '../../../src/training/registry/mlflow-client.ts';

/**
 * `/ready` on a service's metrics port answers 503 with why it is not ready: the error of the dependency it waits for.
 * That text leaves the process without passing through the logger, whose redaction keeps secrets out of log lines, and
 * an upstream may echo a credential in it (a proxy in front of MLflow answering 401 with the header it refused).
 */
describe("/ready's reason carries no secret", () => {
  const TOKEN = 'mlflow-tok-0123456789-of-test';
  let previous: string | undefined;
  let proxy: ReturnType<typeof createServer>;
  let proxyUrl = '';
  before(async () => {
    previous = process.env.MLFLOW_TRACKING_TOKEN;
    process.env.MLFLOW_TRACKING_TOKEN = TOKEN;
    proxy = createServer((req, res) => {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end(`401 Unauthorized: credentials "${req.headers.authorization}" were refused`);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  after(async () => {
    if (previous === undefined) delete process.env.MLFLOW_TRACKING_TOKEN;
    else process.env.MLFLOW_TRACKING_TOKEN = previous;
    reportDependency('registry', undefined);
    await new Promise<void>((r) => proxy.close(() => r()));
  });

  it('a registry refusing the token and quoting it: /ready says 503 and why, without the token', async () => {
    const client = new MlflowClient(proxyUrl);
    const err = await client.api('GET', 'registered-models/get', { name: 'm' }).then(
      () => assert.fail('the proxy answers 401'),
      (e: unknown) => e,
    );
    assert.ok(String((err as Error).message).includes(TOKEN), 'the upstream did echo the token');
    reportDependency('registry', err);
    const server = await startMetricsServer(0, readiness, '127.0.0.1');
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/ready`);
      const body = await res.text();
      assert.equal(res.status, 503);
      assert.ok(!body.includes(TOKEN), body);
      assert.ok(!body.includes(TOKEN.slice(10)), body);
      assert.match(body, /registry: MLflow GET .* failed: HTTP 401/, 'the reason itself is still given');
    } finally {
      await server.close();
    }
  });
});
