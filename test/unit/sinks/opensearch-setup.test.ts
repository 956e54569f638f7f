import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import pino from 'pino';
import { CryptocastError, ERR } from '../../../src/core/errors.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { IndexSink } from '../../../src/sinks/index-sink.ts';
import { OpenSearchIndex } from '../../../src/sinks/opensearch.ts';
import { prediction } from '../../support/factories.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * The set-up calls of the OpenSearch adapter against a local HTTP server that answers as OpenSearch does with and
 * without the Index State Management plugin (the real node of the integration tests has no ISM: it is not on Maven
 * Central), recording the requests.
 */
type Handler = (req: IncomingMessage, body: string) => { status: number; body: unknown };

async function withServer(
  handler: Handler,
  fn: (url: string, calls: string[]) => Promise<void>,
): Promise<void> {
  const calls: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      calls.push(`${req.method} ${req.url}`);
      const r = handler(req, body);
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls);
  } finally {
    server.close();
  }
}

const quiet = pino({ level: 'silent' });
const setup = {
  templateName: 't',
  template: { index_patterns: ['x-*'] },
  policyName: 'p',
  policy: { policy: {} },
};

describe('OpenSearchIndex.setup', () => {
  it('creates the ISM policy when the cluster has ISM and no such policy', () =>
    withServer(
      (req) =>
        req.method === 'GET'
          ? {
              status: 404,
              body: { error: { type: 'status_exception', reason: 'Policy not found' }, status: 404 },
            }
          : { status: 200, body: { acknowledged: true, _id: 'p', _seq_no: 0, _primary_term: 1 } },
      async (url, calls) => {
        const index = new OpenSearchIndex({ url, logger: quiet });
        await index.setup(setup);
        await index.close();
        assert.deepEqual(calls, [
          'POST /_index_template/t',
          'GET /_plugins/_ism/policies/p',
          'PUT /_plugins/_ism/policies/p',
        ]);
      },
    ));

  it('updates an existing policy with its sequence number (a plain PUT would conflict)', () =>
    withServer(
      (req) =>
        req.method === 'GET'
          ? { status: 200, body: { _id: 'p', _seq_no: 7, _primary_term: 2, policy: {} } }
          : { status: 200, body: { acknowledged: true } },
      async (url, calls) => {
        const index = new OpenSearchIndex({ url, logger: quiet });
        await index.setup(setup);
        await index.close();
        assert.equal(calls[2], 'PUT /_plugins/_ism/policies/p?if_seq_no=7&if_primary_term=2');
      },
    ));

  it('carries on without retention where there is no ISM plugin (no handler for the path)', () =>
    withServer(
      (req) =>
        req.url?.startsWith('/_plugins')
          ? {
              status: 400,
              body: { error: 'no handler found for uri [/_plugins/_ism/policies/p] and method [GET]' },
            }
          : { status: 200, body: { acknowledged: true } },
      async (url, calls) => {
        const index = new OpenSearchIndex({ url, logger: quiet });
        await index.setup(setup);
        await index.close();
        assert.deepEqual(calls, ['POST /_index_template/t', 'GET /_plugins/_ism/policies/p']);
      },
    ));

  it('fails (to be retried by the sink) when the template cannot be installed', () =>
    withServer(
      () => ({ status: 503, body: { error: 'unavailable' } }),
      async (url) => {
        const index = new OpenSearchIndex({ url, logger: quiet });
        await assert.rejects(index.setup(setup));
        await index.close();
      },
    ));
});

describe('OpenSearch refusing access', () => {
  const refuse = (status: number) => () => ({
    status,
    body: { error: { type: 'security_exception', reason: 'no permissions' }, status },
  });

  it('a 401 at set-up ends the sink at once with CC_ERR_CONFIG (an outage would be retried for ever)', () =>
    withServer(refuse(401), async (url, calls) => {
      const index = new OpenSearchIndex({ url, logger: quiet, username: 'u', password: 'wrong' });
      const sink = new IndexSink(new InProcessBus(), index, { logger: quiet });
      await assert.rejects(sink.start(), (err: unknown) => {
        assert.ok(err instanceof CryptocastError);
        assert.equal(err.code, ERR.CONFIG.code);
        assert.match(err.message, /OpenSearch refused the credentials \(HTTP 401\)/);
        return true;
      });
      assert.equal(calls.length, 1, 'asked once, not retried');
    }));

  it('a 403 from a full disk (cluster_block_exception) is retried, not a refusal', () =>
    withServer(
      () => ({
        status: 403,
        body: {
          error: { type: 'cluster_block_exception', reason: 'index read-only / allow delete' },
          status: 403,
        },
      }),
      async (url, calls) => {
        const sink = new IndexSink(new InProcessBus(), new OpenSearchIndex({ url, logger: quiet }), {
          logger: quiet,
          sleep: async () => {},
        });
        const started = sink.start();
        await waitFor(
          'three attempts',
          () => calls.length,
          (n) => n >= 3,
          { timeoutMs: 10_000, everyMs: 10 },
        );
        await sink.stop();
        await assert.rejects(started, /stopped before/);
      },
    ));

  it('a 403 on a bulk request fails the sink (`failed`), leaving the batch uncommitted', () =>
    withServer(
      (req) =>
        req.url?.startsWith('/_bulk')
          ? refuse(403)()
          : { status: 200, body: { acknowledged: true, _id: 'p', _seq_no: 0, _primary_term: 1 } },
      async (url) => {
        const bus = new InProcessBus();
        const sink = new IndexSink(bus, new OpenSearchIndex({ url, logger: quiet }), { logger: quiet });
        await sink.start();
        await bus.publish(topics.predictions, [prediction({ windowEnd: Date.UTC(2025, 0, 1, 12) })]);
        await assert.rejects(sink.failed, /OpenSearch refused the permission \(HTTP 403\)/);
        assert.equal(sink.stats.indexed, 0);
        await sink.stop();
        await bus.close();
      },
    ));
});
