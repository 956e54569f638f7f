import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelay } from '../../../src/core/retry.ts';
import { ReconnectingSocket } from '../../../src/ingestion/live/ws-connection.ts';
import { until } from '../../support/exchanges/base.ts';
import { sleep, testLog } from '../../support/exchanges/harness.ts';
import { KrakenServer } from '../../support/exchanges/kraken.ts';

describe('reconnect back-off', () => {
  it('is exponential with jitter in [base/2, base], capped', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 1, max: 120_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (failures, initialMs, extra, r) => {
          const b = { initialMs, maxMs: initialMs + extra };
          const base = Math.min(b.maxMs, initialMs * 2 ** failures);
          const d = backoffDelay(failures, b, () => r);
          assert.ok(d >= base / 2 && d <= base, `${d} outside [${base / 2}, ${base}]`);
          assert.ok(d <= b.maxMs);
        },
      ),
    );
    const b = { initialMs: 100, maxMs: 1_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((f) => backoffDelay(f, b, () => 0)),
      [50, 100, 200, 400, 500, 500],
    );
  });
});

describe('ReconnectingSocket against a local server', () => {
  it('backs off more after each failed attempt, up to the cap; a healthy connection resets it', async () => {
    const srv = await new KrakenServer().listen();
    srv.down = true; // every handshake is refused (HTTP 503)
    const delays: number[] = [];
    const opened: number[] = [];
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      backoff: { initialMs: 10, maxMs: 40 },
      random: () => 0, // the lower bound: base / 2
      onBackoff: (d) => delays.push(d),
      onOpen: (_send, n) => void opened.push(n),
      onMessage: () => {},
    });
    const done = socket.run(abort.signal);
    try {
      await until(() => delays.length >= 5, 2_000, 'failed attempts');
      assert.deepEqual(delays.slice(0, 5), [10, 20, 20, 20, 20], 'doubling from 10 ms, capped at 40/2');
      srv.down = false;
      await until(() => opened.length === 1, 2_000, 'connected once the server is back');
      await sleep(20); // the status frame arrives: a healthy connection
      const before = delays.length;
      srv.dropAll();
      await until(() => opened.length === 2, 2_000, 'reconnected');
      assert.equal(delays[before], 5, 'back to the initial delay after a healthy connection');
      assert.ok(socket.attempts >= 7);
    } finally {
      abort.abort();
      await done;
      await srv.close();
    }
  });

  it('stops promptly when aborted while waiting to reconnect', async () => {
    const srv = await new KrakenServer().listen();
    srv.down = true;
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      backoff: { initialMs: 10_000, maxMs: 10_000 },
      onOpen: () => {},
      onMessage: () => {},
    });
    const done = socket.run(abort.signal);
    await until(() => socket.attempts === 1);
    await sleep(20); // now in a 5–10 s back-off wait
    const t = Date.now();
    abort.abort();
    await done;
    assert.ok(Date.now() - t < 200, 'did not wait out the back-off');
    await srv.close();
  });

  it('hands frames over one at a time, in order, even when the handler is slow', async () => {
    const srv = await new KrakenServer().listen();
    const seen: string[] = [];
    let busy = false;
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      onOpen: () => {},
      onMessage: async (text) => {
        assert.equal(busy, false, 'never two handlers at once');
        busy = true;
        await sleep(5);
        seen.push(text);
        busy = false;
      },
    });
    const done = socket.run(abort.signal);
    try {
      await until(() => srv.sockets.size === 1);
      for (let i = 0; i < 10; i++) srv.sendRaw(`{"n":${i}}`);
      await until(() => seen.length === 11, 2_000); // the status frame + 10
      assert.deepEqual(
        seen.slice(1),
        Array.from({ length: 10 }, (_, i) => `{"n":${i}}`),
      );
    } finally {
      abort.abort();
      await done;
      await srv.close();
    }
  });
});
