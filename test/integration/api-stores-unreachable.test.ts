import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { freePort } from '../support/ports.ts';
import { scratchDir } from '../support/scratch.ts';
import { SilentServer } from '../support/silent-server.ts';
import { waitFor } from '../support/wait.ts';

/**
 * `cryptocast service api` whose PostgreSQL is unreachable at start listens at once: what needs a store answers a
 * JSON 503 naming it, /v1/ready says what it waits for, and a stop ends it while it still waits. No PostgreSQL is
 * started: the store URL points at a TCP server that accepts and never answers, or at a port where nothing listens.
 * (That it is ready once the store opens, without a restart, is test/unit/api/api-service.test.ts, on DuckDB.)
 */
const dir = scratchDir('cc-api-unreachable-');
let silent: SilentServer | undefined;
after(async () => {
  await silent?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(url: string) {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as { error?: string; message?: string } };
}

describe('service api with its store unreachable at start', () => {
  for (const kind of ['accepts and never answers', 'nothing listens'] as const)
    it(`listens at once and answers 503 store_unavailable naming the store (${kind})`, async () => {
      let pgPort: number;
      if (kind === 'nothing listens') pgPort = await freePort();
      else {
        silent ??= await SilentServer.listen();
        pgPort = silent.port;
      }
      const port = await freePort();
      const api = runCli(
        [
          'service',
          'api',
          '--bus',
          'memory',
          '--store',
          `postgres://cc@127.0.0.1:${pgPort}/cc`,
          '--registry',
          join(dir, `registry-${port}`),
          '--port',
          String(port),
        ],
        { CRYPTOCAST_LOG_LEVEL: 'warn' },
      );
      try {
        const base = `http://127.0.0.1:${port}`;
        // The store never opens here (nothing answers): an API that waited for it would never listen. The deadline
        // is for a loaded machine's start of a child process (seconds), not the claim.
        await waitFor(
          'the API to listen',
          () => fetch(`${base}/v1/health`).then((r) => r.status),
          (s) => s === 200,
          {
            timeoutMs: 60_000,
            everyMs: 100,
          },
        );
        assert.deepEqual(await get(`${base}/v1/ready`), {
          status: 503,
          body: {
            error: 'store_unavailable',
            message:
              'waiting for the predictions store, the errors store, the candles store to open (the service log says why)',
          },
        });
        assert.deepEqual(await get(`${base}/v1/predictions?pair=BTC-USD`), {
          status: 503,
          body: {
            error: 'store_unavailable',
            message: 'the predictions store is not open yet: waiting for it',
          },
        });
        assert.deepEqual(await get(`${base}/v1/quality?pair=BTC-USD`), {
          status: 503,
          body: { error: 'store_unavailable', message: 'the errors store is not open yet: waiting for it' },
        });
        assert.deepEqual(await get(`${base}/v1/candles?pair=BTC-USD`), {
          status: 503,
          body: { error: 'store_unavailable', message: 'the candles store is not open yet: waiting for it' },
        });
      } finally {
        api.child.kill('SIGTERM');
      }
      const stopped = Date.now();
      // A stop while it waits ends it cleanly and promptly: a connection attempt in flight is cut short, not waited
      // out (it took the 10 s connect timeout).
      assert.equal(await exitedWithin(api, 30_000, 'service api to stop while waiting'), 0, api.stderr());
      // Below the 10-s connect timeout it would have waited out, with room for a loaded machine's process exit.
      assert.ok(Date.now() - stopped < 8_000, `stopped in ${Date.now() - stopped} ms`);
    });
});
