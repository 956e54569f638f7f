import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { WebSocket } from 'ws';
import { backoffDelay } from '../../../../src/core/retry.ts';
import { ReconnectingSocket } from '../../../../src/ingestion/live/ws-connection.ts';
import { until } from '../../../support/exchanges/base.ts';
import { testLog } from '../../../support/exchanges/harness.ts';
import { KrakenServer } from '../../../support/exchanges/kraken.ts';

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
  it('tells when the oldest frame not yet handled arrived, until its handler is done, even if it throws', async () => {
    const srv = new KrakenServer();
    srv.heartbeatMs = 60_000; // only the frames this test sends (and the status frame on connect)
    await srv.listen();
    const handling: number[] = []; // each frame's received time, as its handling starts
    let release: () => void = () => {};
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      onOpen: () => {},
      onMessage: async (_text, receivedTs) => {
        handling.push(receivedTs);
        if (handling.length === 1) await slow; // a slow sink
        if (handling.length === 2) throw new Error('a handler that fails');
      },
    });
    const done = socket.run(abort.signal);
    try {
      assert.equal(socket.oldestUnhandledTs, undefined);
      await until(() => handling.length === 1, 5_000, 'the status frame');
      srv.sendRaw({ channel: 'heartbeat' });
      srv.sendRaw({ channel: 'heartbeat' });
      // Both received and queued behind the slow one (counted as they arrive), which is still the oldest.
      const queued = () =>
        (socket as unknown as { unhandledReceivedTs: number[] }).unhandledReceivedTs.length;
      await until(() => queued() === 3, 30_000, 'the two frames queued behind it');
      assert.equal(socket.oldestUnhandledTs, handling[0], 'the frame being handled');
      release();
      await until(() => handling.length === 3, 5_000, 'the queued frames');
      await until(() => socket.oldestUnhandledTs === undefined, 5_000, 'the queue drained');
      assert.ok(handling[0]! <= handling[1]! && handling[1]! <= handling[2]!);
    } finally {
      release();
      abort.abort();
      await done;
      await srv.close();
    }
  });

  it('backs off more after each failed attempt, up to the cap; a healthy connection resets it', async () => {
    const srv = await new KrakenServer().listen();
    srv.down = true; // every handshake is refused (HTTP 503)
    const delays: number[] = [];
    const opened: number[] = [];
    let frames = 0;
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      backoff: { initialMs: 10, maxMs: 40 },
      random: () => 0, // the lower bound: base / 2
      stableAfterMs: 0, // any connection that delivers data is healthy here (the next test: one that must last)
      onBackoff: (d) => delays.push(d),
      onOpen: (_send, n) => void opened.push(n),
      onMessage: () => void frames++,
    });
    const done = socket.run(abort.signal);
    try {
      await until(() => delays.length >= 5, 2_000, 'failed attempts');
      assert.deepEqual(delays.slice(0, 5), [10, 20, 20, 20, 20], 'doubling from 10 ms, capped at 40/2');
      srv.down = false;
      await until(() => opened.length === 1, 2_000, 'connected once the server is back');
      await until(() => frames >= 1, 30_000, 'the status frame: a healthy connection');
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

  it('a server that says hello and hangs up at once is not a healthy connection: the back-off keeps growing', async () => {
    /** Accepts, sends Kraken's status frame (as on every connect), then closes: an exchange or a proxy in trouble. */
    class HangingUp extends KrakenServer {
      protected override onConnect(ws: WebSocket): void {
        super.onConnect(ws);
        ws.close(1011, 'going away');
      }
    }
    const srv = await new HangingUp().listen();
    const delays: number[] = [];
    let frames = 0;
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      backoff: { initialMs: 10, maxMs: 10_000 },
      random: () => 0,
      onBackoff: (d) => delays.push(d),
      onOpen: () => {},
      onMessage: () => void frames++,
    });
    const done = socket.run(abort.signal);
    try {
      await until(() => delays.length >= 4, 30_000, 'four reconnects');
      assert.ok(frames >= 1, 'each connection delivered its status frame');
      // Without the rule it was reset to the first delay (5 ms) after every connection: a storm.
      assert.deepEqual(delays.slice(0, 4), [10, 20, 40, 80]);
    } finally {
      abort.abort();
      await done;
      await srv.close();
    }
  });

  it('stops within the close timeout when the peer never answers the close frame (half-open)', async () => {
    // A websocket handshake by hand, one frame, then nothing is ever answered (the close frame included).
    const sockets: Socket[] = [];
    const srv = createServer((sock) => {
      sockets.push(sock);
      sock.once('data', (buf) => {
        const key = /Sec-WebSocket-Key: (.+)\r\n/i.exec(buf.toString())![1]!.trim();
        const accept = createHash('sha1')
          .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest('base64');
        sock.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        const payload = Buffer.from('{"channel":"heartbeat"}');
        sock.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
        sock.on('data', () => {});
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    let frames = 0;
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: `ws://127.0.0.1:${(srv.address() as AddressInfo).port}/`,
      name: 'test',
      log: testLog,
      idleTimeoutMs: 120_000, // liveness would not end it: only the close timeout can
      onOpen: () => {},
      onMessage: () => void frames++,
    });
    const done = socket.run(abort.signal);
    try {
      await until(() => frames >= 1, 30_000, 'connected');
      const t = Date.now();
      abort.abort();
      await done;
      // The close timeout is 1 s; before, a stop waited for the idle timeout or ws's own 30 s.
      assert.ok(Date.now() - t < 15_000, `stopped after ${Date.now() - t} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      srv.close();
    }
  });

  it('stops promptly when aborted while waiting to reconnect', async () => {
    const srv = await new KrakenServer().listen();
    srv.down = true;
    const abort = new AbortController();
    let waiting = 0;
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      backoff: { initialMs: 120_000, maxMs: 120_000 },
      onBackoff: (d) => {
        waiting = d;
      },
      onOpen: () => {},
      onMessage: () => {},
    });
    const done = socket.run(abort.signal);
    await until(() => waiting > 0, 30_000, 'the back-off wait');
    assert.ok(waiting >= 60_000, `a 60–120 s back-off (${waiting} ms)`);
    const t = Date.now();
    abort.abort();
    await done;
    // Far below the minute of back-off left, with room for a loaded machine.
    assert.ok(Date.now() - t < 20_000, 'did not wait out the back-off');
    await srv.close();
  });

  it('hands frames over one at a time, in order, even when the handler is slow', async () => {
    const srv = await new KrakenServer().listen();
    const seen: string[] = [];
    let busy = false;
    let arrived = 0;
    const abort = new AbortController();
    const socket = new ReconnectingSocket({
      url: srv.wsUrl,
      name: 'test',
      log: testLog,
      onOpen: () => {},
      onMessage: async (text) => {
        assert.equal(busy, false, 'never two handlers at once');
        busy = true;
        // The first handler (the status frame) is slow: it ends only once all ten frames have arrived on the socket
        // behind it; the others each yield to the event loop once.
        if (seen.length === 0) await until(() => arrived >= 10, 30_000, 'the ten frames behind the first');
        else await new Promise((r) => setImmediate(r));
        seen.push(text);
        busy = false;
      },
    });
    const done = socket.run(abort.signal);
    try {
      await until(() => srv.sockets.size === 1);
      // Counts the ten frames as the socket receives them, before any handler runs.
      (socket as unknown as { ws: { on(e: 'message', f: (d: unknown) => void): void } }).ws.on(
        'message',
        (d) => {
          if (String(d).startsWith('{"n"')) arrived++;
        },
      );
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
