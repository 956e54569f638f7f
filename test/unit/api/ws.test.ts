import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { ErrorsFeed } from '../../../src/api/errors-feed.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { type ApiOptions, buildApi, wsHubOf } from '../../../src/api/server.ts';
import { redirectLogLines } from '../../../src/core/log.ts';
import { scorePrediction, unscorable } from '../../../src/monitoring/score.ts';
import type { ErrorsStore } from '../../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../../src/monitoring/store/open.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import type { PredictionError } from '../../../src/schemas/prediction-error.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { MemoryPredictionsStore, prediction } from '../../support/memory-predictions-store.ts';
import { scratchDir } from '../../support/scratch.ts';
import { waitFor } from '../../support/wait.ts';

const MIN = 60_000;
/** Six hours ago, on a minute: within the default replay reach (24 h). */
const T0 = Math.floor(Date.now() / MIN) * MIN - 6 * 3_600_000;
const at = (i: number) => T0 + i * MIN;

/**
 * A store whose history answers only when the test opens the gate: a replay from it overlaps live predictions for
 * exactly as long as the test says, however slow the machine.
 */
class GatedStore extends MemoryPredictionsStore {
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  /** From now on, history waits for `release()`. */
  hold(): void {
    this.gate = new Promise((r) => {
      this.open = r;
    });
  }
  release(): void {
    this.open?.();
  }
  override async history(...args: Parameters<MemoryPredictionsStore['history']>): Promise<Prediction[]> {
    const rows = await super.history(...args);
    await this.gate;
    return rows;
  }
}

/** A store whose history, once `hang` is set, never answers (a hung PostgreSQL, up to its query timeout). */
class HungStore extends MemoryPredictionsStore {
  hang = false;
  override async history(...args: Parameters<MemoryPredictionsStore['history']>): Promise<Prediction[]> {
    const rows = await super.history(...args); // counted in historyCalls
    if (this.hang) await new Promise(() => {});
    return rows;
  }
}

interface Msg {
  type: string;
  data?: Prediction;
  error?: string;
  message?: string;
  channel?: string;
  pair?: string;
  pairs?: string[];
  replayFrom?: number;
  replayFromByPair?: Record<string, number>;
}

class Client {
  readonly ws: WebSocket;
  readonly msgs: Msg[] = [];
  closed: { code: number; reason: string } | undefined;
  private wake: (() => void) | undefined;
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d) => {
      this.msgs.push(JSON.parse(String(d)) as Msg);
      this.wake?.();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.wake?.();
    });
    ws.on('error', () => {});
  }
  static connect(port: number, headers: Record<string, string> = {}): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }
  send(x: unknown): void {
    this.ws.send(typeof x === 'string' ? x : JSON.stringify(x));
  }
  /** The server said its replay of a subscription is done (`replayed`): live records follow. */
  replayed(): boolean {
    return this.msgs.some((m) => m.type === 'replayed');
  }
  predictions(): Prediction[] {
    return this.msgs.filter((m) => m.type === 'prediction').map((m) => m.data!);
  }
  async until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      const left = end - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.msgs).slice(-400)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }
  /**
   * Proves that every frame the server queued for this client so far has arrived: frames on one socket keep their
   * order, so the answer to a frame sent now comes after them. (An `unsubscribe` of a pair nobody uses is answered
   * and changes nothing.) Used where a test asserts that something was NOT sent: instead of a blind delay.
   */
  async barrier(): Promise<void> {
    const answered = () =>
      this.msgs.filter((m) => m.type === 'unsubscribed' && m.pairs?.[0] === 'ZZZ-USD').length;
    const before = answered();
    this.send({ type: 'unsubscribe', pairs: ['ZZZ-USD'] });
    await this.until(() => answered() > before, 'the answer to the barrier frame');
  }
  close(): void {
    this.ws.terminate();
  }
}

const servers: (() => Promise<void>)[] = [];
after(async () => {
  for (const s of servers) await s();
});

async function serve(o: { ringSize?: number; options?: ApiOptions; store?: MemoryPredictionsStore } = {}) {
  const bus = new InProcessBus();
  const store = o.store ?? new MemoryPredictionsStore();
  const latest = new LatestPredictions({ ringSize: o.ringSize });
  const app = buildApi({ latest, store, options: o.options });
  await app.listen({ port: 0, host: '127.0.0.1' });
  await latest.start({ bus, store, pairs: ['BTC/USD', 'ETH/USD'] });
  const port = (app.server.address() as { port: number }).port;
  let onBus = 0;
  /** Publishes on the topic only (counted, for `taken`). */
  const publishTopic = async (ps: Prediction[]) => {
    await bus.publish(topics.predictions, ps);
    onBus += ps.length;
  };
  /** What the predictor does: the store, then the topic. */
  const publish = async (...ps: Prediction[]) => {
    await store.write(ps);
    await publishTopic(ps);
  };
  /**
   * Waits until the API's feed has taken every prediction published on the topic so far: it hands each one to the
   * WebSocket hub synchronously, so from then on whatever the hub sends for them is queued on the sockets.
   */
  const taken = () =>
    waitFor(
      'the feed to take every published prediction',
      () => latest.stats.received,
      (n) => n >= onBus,
      { timeoutMs: 30_000, everyMs: 5 },
    );
  const close = async () => {
    await app.close();
    await latest.stop();
    await bus.close();
  };
  servers.push(close);
  return { app, bus, store, latest, port, publish, publishTopic, taken, hub: wsHubOf(app)!, close };
}

const ends = (ps: Prediction[]) => ps.map((p) => (p.windowEnd - T0) / MIN);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('WebSocket /v1/ws', () => {
  test('subscribe: the latest first, then live predictions of the subscribed pairs only; unsubscribe stops them', async () => {
    const s = await serve();
    await s.publish(prediction('BTC/USD', at(0)));
    await s.taken(); // the snapshot must be there to be sent first
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await c.until(() => c.predictions().length === 1, 'the snapshot');
    assert.deepEqual(c.msgs[0], { type: 'subscribed', channel: 'predictions', pairs: ['BTC-USD'] });
    await s.publish(prediction('ETH/USD', at(1)), prediction('BTC/USD', at(1)), prediction('BTC/USD', at(2)));
    await c.until(() => c.predictions().length === 3, 'live predictions');
    assert.deepEqual(ends(c.predictions()), [0, 1, 2]);
    assert.ok(c.predictions().every((p) => p.pair === 'BTC/USD'));
    c.send({ type: 'unsubscribe', pairs: ['BTC-USD'] });
    await c.until(() => c.msgs.some((m) => m.type === 'unsubscribed'), 'unsubscribed');
    await s.publish(prediction('BTC/USD', at(3)));
    await s.taken();
    await c.barrier(); // anything sent for minute 3 would have arrived before the barrier's answer
    assert.equal(c.predictions().length, 3);
    c.close();
  });

  test('resume after a reconnect from a timestamp: exactly what was missed, then live (from the ring)', async () => {
    const s = await serve();
    const a = await Client.connect(s.port);
    a.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await a.until(() => a.replayed(), 'subscribed and replayed');
    for (let i = 1; i <= 5; i++) await s.publish(prediction('BTC/USD', at(i)));
    await a.until(() => a.predictions().length === 5, 'five predictions');
    const last = a.predictions().at(-1)!.windowEnd;
    a.close();
    for (let i = 6; i <= 8; i++) await s.publish(prediction('BTC/USD', at(i)));
    await s.taken(); // missed while away: in the ring before the reconnect
    const b = await Client.connect(s.port);
    b.send({ type: 'subscribe', pairs: ['BTC-USD'], since: last });
    await b.until(() => b.predictions().length === 3, 'the missed predictions');
    for (let i = 9; i <= 10; i++) await s.publish(prediction('BTC/USD', at(i)));
    await b.until(() => b.predictions().length === 5, 'live after the replay');
    assert.deepEqual(ends(b.predictions()), [6, 7, 8, 9, 10]);
    assert.equal(s.store.historyCalls, 0, 'the ring covered it');
    b.close();
  });

  test('resume from the store when the ring is too short, with live predictions arriving during the replay', async () => {
    const store = new GatedStore();
    const s = await serve({ ringSize: 5, store });
    const warm = await Client.connect(s.port);
    warm.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await warm.until(() => warm.replayed(), 'subscribed and replayed');
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    await warm.until(() => warm.predictions().length === 20, 'all twenty');
    warm.close();
    store.hold();
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(2) });
    await waitFor(
      'the replay to read the store',
      () => store.historyCalls,
      (n) => n > 0,
      { everyMs: 5 },
    );
    // Live while the store is being read: one new, one that the store will also return (published before the
    // read finished), and a re-publication of an old one. The read finishes only once the hub holds all four.
    await s.publish(prediction('BTC/USD', at(21)));
    await s.publish(prediction('BTC/USD', at(22)));
    await s.publish(prediction('BTC/USD', at(22)));
    await s.publish(prediction('BTC/USD', at(21), { createdAt: at(21) + 999 }));
    await s.taken();
    await c.barrier();
    assert.equal(c.predictions().length, 0, 'nothing is sent while the replay reads the store');
    store.release();
    await c.until(() => c.predictions().length >= 20, 'replay and live', 10_000);
    await s.publish(prediction('BTC/USD', at(23)));
    await c.until(() => c.predictions().length >= 21, 'the next live one');
    await c.barrier(); // a duplicate would have arrived before the barrier's answer
    assert.deepEqual(ends(c.predictions()), range(3, 23));
    assert.ok(store.historyCalls > 0, 'read from the store');
    c.close();
  });

  test("one client's replays read the store one at a time, not one read per pair at once", async () => {
    const store = new GatedStore();
    const s = await serve({ ringSize: 5, store });
    let inFlight = 0;
    let most = 0;
    const history = store.history.bind(store);
    store.history = async (...args) => {
      most = Math.max(most, ++inFlight);
      try {
        return await history(...args);
      } finally {
        inFlight--;
      }
    };
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    store.hold();
    const c = await Client.connect(s.port);
    const pairs = ['BTC-USD', ...Array.from({ length: 31 }, (_, i) => `Q${String(i).padStart(2, '0')}-USD`)];
    c.send({ type: 'subscribe', pairs, since: at(2) });
    await waitFor(
      'the first read',
      () => store.historyCalls,
      (n) => n > 0,
      { everyMs: 5 },
    );
    // Were the reads side by side, all 32 would be waiting at the gate by the time the client's next frame is answered.
    await c.barrier();
    assert.equal(inFlight, 1, 'one read in flight');
    store.release();
    await c.until(() => c.predictions().length === 18, 'the replay of BTC-USD');
    await waitFor(
      'every pair read',
      () => store.historyCalls,
      (n) => n >= 32,
      { everyMs: 5 },
    );
    assert.equal(most, 1);
    // The replays are done and the pairs live: a new prediction arrives.
    await s.publish(prediction('BTC/USD', at(21)));
    await c.until(() => c.predictions().length === 19, 'the next live one');
    c.close();
  });

  test('how far back a replay reaches is bounded pair by pair: a pair whose feed stopped long ago does not stretch the others', async () => {
    // Replays reach an hour back from each pair's newest record. BTC's newest is minute 300; ETH's feed stopped at
    // minute 0, five hours before.
    const s = await serve({ ringSize: 5, options: { ws: { maxReplayMs: 60 * MIN } } });
    for (let i = 0; i <= 300; i += 100)
      await s.publish(...range(i, Math.min(i + 99, 300)).map((j) => prediction('BTC/USD', at(j))));
    await s.publish(prediction('ETH/USD', at(0)));
    await s.taken();
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD', 'ETH-USD'], since: 0 });
    await c.until(() => c.msgs.some((m) => m.type === 'subscribed'), 'subscribed');
    const ack = c.msgs.find((m) => m.type === 'subscribed')!;
    assert.deepEqual(ack.replayFromByPair, { 'BTC-USD': at(240), 'ETH-USD': at(-60) });
    assert.equal(ack.replayFrom, at(-60), 'replayFrom: the earliest of them, as before');
    // Live ones, held until each pair's replay is over: once they are in, the replays are whole.
    await s.publish(prediction('BTC/USD', at(301)), prediction('ETH/USD', at(1)));
    const of = (pair: string) => c.predictions().filter((p) => p.pair === pair);
    await c.until(
      () =>
        of('BTC/USD').some((p) => p.windowEnd === at(301)) &&
        of('ETH/USD').some((p) => p.windowEnd === at(1)),
      'both replays and the live predictions',
      20_000,
    );
    // BTC: its own hour (minutes 241–300), not five hours more because ETH is in the same frame.
    assert.deepEqual(ends(of('BTC/USD')), range(241, 301));
    assert.deepEqual(ends(of('ETH/USD')), [0, 1]);
    c.close();
  });

  test("a hung store read for one pair holds neither another pair's replay from memory nor its live predictions", async () => {
    const store = new HungStore();
    // The deadline far away: only the chain is under test.
    const s = await serve({ ringSize: 5, store, options: { ws: { replayReadTimeoutMs: 600_000 } } });
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    await s.publish(prediction('ETH/USD', at(1)));
    await s.taken();
    store.hang = true;
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(2) }); // before the ring: a store read, which hangs
    await waitFor(
      'the replay to read the store',
      () => store.historyCalls,
      (n) => n > 0,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    c.send({ type: 'subscribe', pairs: ['ETH-USD'] }); // no since: the latest, from memory
    const eth = () => c.predictions().filter((p) => p.pair === 'ETH/USD');
    await c.until(() => eth().length === 1, "ETH's latest while BTC's read hangs", 20_000);
    await s.publish(prediction('ETH/USD', at(2)));
    await c.until(() => eth().length === 2, "ETH's live prediction while BTC's read hangs", 20_000);
    assert.deepEqual(ends(eth()), [1, 2]);
    assert.equal(
      c.predictions().filter((p) => p.pair === 'BTC/USD').length,
      0,
      'BTC still waits for its read',
    );
    assert.equal(store.historyCalls, 1);
    c.close();
  });

  // Every replay a failing store refused wrote an error line with its stack: clients subscribing (reconnecting) during
  // an outage wrote a stack trace each.
  test('a failing store: replay_failed to each client, one error line for the outage', async () => {
    const store = new MemoryPredictionsStore();
    const s = await serve({ ringSize: 5, store });
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    await s.taken();
    const lines: { level: number; msg: string; err?: { stack?: string } }[] = [];
    redirectLogLines((l) => lines.push(JSON.parse(l)));
    try {
      store.failing = true;
      for (let k = 0; k < 10; k++) {
        const c = await Client.connect(s.port);
        c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(2) });
        await c.until(() => c.msgs.some((m) => m.type === 'error'), 'the replay to fail', 20_000);
        assert.equal(c.msgs.find((m) => m.type === 'error')!.error, 'replay_failed');
        c.close();
      }
      const errors = lines.filter((l) => l.level >= 50);
      assert.equal(errors.length, 1, errors.map((l) => l.msg).join(' | '));
      assert.match(errors[0]!.err?.stack ?? '', /store unavailable \(test\)/);
    } finally {
      redirectLogLines(undefined);
    }
  });

  test('a store read that outlives its deadline answers replay_failed, and the pair goes live', async () => {
    const store = new HungStore();
    const s = await serve({ ringSize: 5, store, options: { ws: { replayReadTimeoutMs: 100 } } });
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    await s.taken();
    store.hang = true;
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(2) });
    await c.until(() => c.msgs.some((m) => m.type === 'error'), 'the replay to fail', 20_000);
    const err = c.msgs.find((m) => m.type === 'error')!;
    assert.equal(err.error, 'replay_failed');
    assert.match(err.message!, /BTC-USD: the store did not answer within 100 ms/);
    // Which subscription has the gap: a client resubscribes that one from its old since.
    assert.equal(err.channel, 'predictions');
    assert.equal(err.pair, 'BTC-USD');
    assert.equal(s.hub.stats.replaysTimedOut, 1);
    await s.publish(prediction('BTC/USD', at(21)));
    await c.until(() => c.predictions().length === 1, 'the live prediction after the failed replay', 20_000);
    assert.deepEqual(ends(c.predictions()), [21]);
    c.close();
  });

  test('replayed: each replay that went through ends with it (after its records and the held live ones), also with nothing to replay; none after replay_failed', async () => {
    const store = new HungStore();
    const s = await serve({ ringSize: 5, store, options: { ws: { replayReadTimeoutMs: 100 } } });
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    await s.taken();
    const c = await Client.connect(s.port);
    const types = () => c.msgs.filter((m) => m.type !== 'unsubscribed').map((m) => m.type);
    // Nothing newer than since: no record will come, the frame says the replay is whole all the same.
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(20) });
    await c.until(() => c.replayed(), 'the empty replay done');
    await c.barrier();
    assert.deepEqual(types(), ['subscribed', 'replayed']);
    assert.deepEqual(c.msgs[1], { type: 'replayed', channel: 'predictions', pair: 'BTC-USD' });
    // From the store (the ring of 5 is too short): its records, then the frame.
    c.send({ type: 'unsubscribe', pairs: ['BTC-USD'] });
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(10) });
    await c.until(() => c.msgs.filter((m) => m.type === 'replayed').length === 2, 'the store replay done');
    assert.deepEqual(ends(c.predictions()), range(11, 20));
    assert.equal(c.msgs.at(-1)!.type, 'replayed', 'after every replayed record');
    // A replay that failed: the error frame, and no `replayed` (the gap is not filled).
    store.hang = true;
    c.send({ type: 'unsubscribe', pairs: ['BTC-USD'] });
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(2) });
    await c.until(() => c.msgs.some((m) => m.type === 'error'), 'the replay to fail', 20_000);
    await c.barrier();
    assert.equal(c.msgs.filter((m) => m.type === 'replayed').length, 2);
    c.close();
  });

  test("with API keys, each replay that reads the store takes a token of the key's bucket; none left: rate_limited, no read, live still flows", async () => {
    // Two tokens and (in effect) no refill: the upgrade takes one, the first store read the other.
    const s = await serve({ ringSize: 5, options: { apiKeys: ['k'], ratePerSecond: 0.001, burst: 2 } });
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    await s.taken();
    const c = await Client.connect(s.port, { 'x-api-key': 'k' });
    const errors = () => c.msgs.filter((m) => m.type === 'error');
    const resubscribe = async (since: number) => {
      c.send({ type: 'unsubscribe', pairs: ['BTC-USD'] });
      c.send({ type: 'subscribe', pairs: ['BTC-USD'], since });
    };
    // From the ring (minutes 16–20 in it): no store read, no token.
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(17) });
    await c.until(() => c.predictions().length === 3, 'the replay from the ring');
    // From the store: the last token.
    await resubscribe(at(2));
    await c.until(() => c.predictions().length === 3 + 18, 'the replay from the store', 20_000);
    assert.equal(s.store.historyCalls > 0, true);
    const reads = s.store.historyCalls;
    // From the store again: the bucket is empty.
    await resubscribe(at(2));
    await c.until(
      () => errors().length > 0 || c.predictions().length > 3 + 18,
      'an answer to the third replay',
      20_000,
    );
    assert.deepEqual(
      errors().map((m) => m.error),
      ['rate_limited'],
    );
    assert.match(errors()[0]!.message!, /^BTC-USD not replayed: rate limit exceeded for this API key/);
    assert.equal(errors()[0]!.channel, 'predictions');
    assert.equal(errors()[0]!.pair, 'BTC-USD');
    assert.equal(s.store.historyCalls, reads, 'no store read');
    assert.equal(s.hub.stats.replaysRateLimited, 1);
    await s.publish(prediction('BTC/USD', at(21)));
    await c.until(() => c.predictions().length === 3 + 18 + 1, 'the live prediction', 20_000);
    assert.deepEqual(ends(c.predictions().slice(3 + 18)), [21]);
    // The same bucket as REST's.
    const rest = await fetch(`http://127.0.0.1:${s.port}/v1/predictions/latest?pair=BTC-USD`, {
      headers: { 'x-api-key': 'k' },
    });
    assert.equal(rest.status, 429);
    c.close();
  });

  test('a prediction the store replay already sent is not sent again when the topic delivers it after the replay', async () => {
    const s = await serve({ ringSize: 5 });
    for (let i = 1; i <= 20; i++) await s.publish(prediction('BTC/USD', at(i)));
    // The predictor stores before it publishes: minute 21 is in the store, not yet on the topic.
    const late = prediction('BTC/USD', at(21));
    await s.store.write([late]);
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(2) });
    await c.until(() => c.predictions().length >= 19, 'the replay from the store (3 to 21)');
    await s.publishTopic([late]);
    await s.publish(prediction('BTC/USD', at(22)));
    await c.until(() => c.predictions().length >= 20, 'the next live one');
    await c.barrier(); // a second minute 21 would have arrived before the barrier's answer
    assert.deepEqual(ends(c.predictions()), range(3, 22));
    c.close();
  });

  test('pairs a client unsubscribes or leaves behind do not accumulate in the hub', async () => {
    const s = await serve();
    const c = await Client.connect(s.port);
    const made = ['AAA-USD', 'BBB-USD', 'CCC-USD'];
    c.send({ type: 'subscribe', pairs: made });
    await c.until(() => c.msgs.some((m) => m.type === 'subscribed'), 'subscribed');
    c.send({ type: 'unsubscribe', pairs: made });
    await c.until(() => c.msgs.some((m) => m.type === 'unsubscribed'), 'unsubscribed');
    const byPair = (s.hub as unknown as { byPair: Map<string, unknown> }).byPair;
    for (const p of ['AAA/USD', 'BBB/USD', 'CCC/USD']) assert.equal(byPair.has(p), false, p);
    c.close();
  });

  test('two model versions of one minute are both delivered, each once', async () => {
    const s = await serve();
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['ETH-USD'], since: at(0) });
    await c.until(() => c.replayed(), 'subscribed and replayed');
    await s.publish(prediction('ETH/USD', at(1)), prediction('ETH/USD', at(1), { modelVersion: 2 }));
    await s.publish(prediction('ETH/USD', at(1), { modelVersion: 2 }));
    await c.until(() => c.predictions().length === 2, 'both versions');
    await s.taken();
    await c.barrier(); // the re-publication of version 2, if sent, would have arrived before the barrier's answer
    assert.deepEqual(
      c.predictions().map((p) => p.modelVersion),
      [1, 2],
    );
    c.close();
  });

  test('a long replay goes at the pace of a client that reads slowly for a while, without dropping it', async () => {
    const s = await serve({ ringSize: 15_000, options: { ws: { maxBufferedBytes: 64 * 1024 } } });
    const N = 12_000;
    for (let i = 0; i < N; i += 500)
      await s.publish(...Array.from({ length: 500 }, (_, j) => prediction('BTC/USD', at(i + j))));
    await s.taken();
    const c = await Client.connect(s.port);
    const sock = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    c.send({ type: 'subscribe', pairs: ['BTC-USD'], since: at(-1) });
    sock.pause();
    // The client reads nothing until the server has had to wait for it: its backlog for this client is past the
    // point where the replay waits for the client (half of maxBufferedBytes).
    const serverSide = () => [...(s.hub as unknown as { clients: Set<{ socket: WebSocket }> }).clients][0];
    await waitFor(
      "the replay to wait for the client's pace",
      () => serverSide()?.socket.bufferedAmount ?? 0,
      (n) => n > 32 * 1024,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    sock.resume();
    await c.until(() => c.predictions().length === N, 'the whole replay', 20_000);
    assert.deepEqual(ends(c.predictions()), range(0, N - 1));
    assert.equal(c.closed, undefined);
    assert.equal(s.hub.stats.droppedSlow, 0);
    c.close();
  });

  test('malformed frames get an error frame and the connection carries on', async () => {
    const s = await serve();
    await s.publish(prediction('BTC/USD', at(1)));
    const c = await Client.connect(s.port);
    const bad = [
      'not json',
      '[1,2]',
      'null',
      '{"type":"dance"}',
      '{"type":"subscribe"}',
      '{"type":"subscribe","pairs":[]}',
      '{"type":"subscribe","pairs":["BTCUSD"]}',
      '{"type":"subscribe","pairs":[42]}',
      '{"type":"subscribe","pairs":["BTC-USD"],"since":"yesterday"}',
    ];
    for (const f of bad) c.send(f);
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await c.until(() => c.msgs.length === bad.length + 1, 'an error per frame');
    assert.ok(c.msgs.every((m) => m.type === 'error' && m.error === 'bad_request'));
    c.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await c.until(() => c.predictions().length === 1, 'a prediction after the errors');
    assert.equal(c.closed, undefined);
    c.close();
  });

  test('a client sending too many frames per second is closed with 1008', async () => {
    const s = await serve({ options: { ws: { maxFramesPerSecond: 10 } } });
    const c = await Client.connect(s.port);
    for (let i = 0; i < 30; i++) c.send({ type: 'unsubscribe', pairs: ['BTC-USD'] });
    await c.until(() => c.closed !== undefined, 'the close');
    assert.equal(c.closed!.code, 1008);
  });

  test('a plain GET or HEAD of /v1/ws (no Upgrade) answers a JSON 426, and the stream still opens', async () => {
    const s = await serve();
    const res = await fetch(`http://127.0.0.1:${s.port}/v1/ws`);
    assert.equal(res.status, 426);
    assert.equal(res.headers.get('upgrade'), 'websocket');
    const body = (await res.json()) as { error: string; message: string };
    assert.equal(body.error, 'upgrade_required');
    assert.match(body.message, /WebSocket/);
    assert.equal((await fetch(`http://127.0.0.1:${s.port}/v1/ws`, { method: 'HEAD' })).status, 426);
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await c.until(() => c.msgs.some((m) => m.type === 'subscribed'), 'subscribed');
    c.close();
  });

  test('with API keys the upgrade needs x-api-key', async () => {
    const s = await serve({ options: { apiKeys: ['secret'] } });
    await assert.rejects(Client.connect(s.port), /HTTP 401/);
    const c = await Client.connect(s.port, { 'x-api-key': 'secret' });
    c.close();
  });

  test('a client that stops answering pings is dropped', async () => {
    const s = await serve({ options: { ws: { heartbeatMs: 50 } } });
    const c = await Client.connect(s.port);
    await waitFor(
      'the hub to take the client',
      () => s.hub.size,
      (n) => n === 1,
      { everyMs: 5 },
    );
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // A ping every 50 ms; the client, paused, never answers: dropped at the second ping after the pause at the
    // earliest, whenever a loaded machine runs the timer.
    await waitFor(
      'the hub to drop the silent client',
      () => s.hub.size,
      (n) => n === 0,
      {
        timeoutMs: 30_000,
        everyMs: 20,
      },
    );
    c.close();
  });

  test('what ws refuses by itself says why: a bad handshake gets a JSON 400, a frame over 4096 bytes a 1009 with a reason', async () => {
    const s = await serve();
    const answer = await new Promise<string>((resolve, reject) => {
      let out = '';
      const sock = connect(s.port, '127.0.0.1', () =>
        sock.write(
          'GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Key: not-a-key\r\nSec-WebSocket-Version: 13\r\n\r\n',
        ),
      );
      sock.on('data', (d) => {
        out += d;
      });
      // Only the server can end it: the client side stays open.
      sock.on('close', () => resolve(out));
      sock.on('error', reject);
    });
    const [head, body] = answer.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 400 Bad Request/);
    assert.match(head!, /content-type: application\/json/i);
    assert.deepEqual(JSON.parse(body!), {
      error: 'bad_request',
      message: 'not a valid WebSocket handshake: Missing or invalid Sec-WebSocket-Key header',
    });

    const c = await Client.connect(s.port);
    c.send(JSON.stringify({ type: 'subscribe', pairs: ['BTC-USD'], pad: 'x'.repeat(5000) }));
    await c.until(() => c.closed !== undefined, 'the close');
    assert.deepEqual(c.closed, {
      code: 1009,
      reason: 'a frame over 4096 bytes: send subscribe and unsubscribe frames only',
    });
  });

  test('clients are told when the API stops: 1001 with a reason', async () => {
    const s = await serve();
    const c = await Client.connect(s.port);
    c.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await c.until(() => c.msgs.some((m) => m.type === 'subscribed'), 'subscribed');
    await s.app.close();
    await c.until(() => c.closed !== undefined, 'the close');
    assert.deepEqual(c.closed, {
      code: 1001,
      reason: 'the API is shutting down: reconnect (another instance, or this one once restarted)',
    });
  });

  test('connections beyond maxClients are closed with 1013; one freed lets the next in', async () => {
    const s = await serve({ options: { ws: { maxClients: 2 } } });
    const a = await Client.connect(s.port);
    const b = await Client.connect(s.port);
    const c = await Client.connect(s.port);
    await c.until(() => c.closed !== undefined, 'the third to be closed');
    assert.equal(c.closed!.code, 1013);
    assert.match(c.closed!.reason, /server full \(2 connections\)/);
    assert.equal(s.hub.stats.refusedFull, 1);
    // The two inside still work.
    b.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await b.until(() => b.msgs.some((m) => m.type === 'subscribed'), 'b subscribed');
    a.close();
    await waitFor(
      'the hub to drop a',
      () => s.hub.size,
      (n) => n === 1,
      { timeoutMs: 10_000 },
    );
    const d = await Client.connect(s.port);
    d.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await d.until(() => d.msgs.some((m) => m.type === 'subscribed'), 'd subscribed');
    assert.equal(d.closed, undefined);
    b.close();
    d.close();
  });

  test('a slow client is dropped with 1013 and does not delay a fast one', async (t) => {
    const s = await serve({ options: { ws: { maxBufferedBytes: 64 * 1024 } } });
    const slow = await Client.connect(s.port);
    const fast = await Client.connect(s.port);
    slow.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    fast.send({ type: 'subscribe', pairs: ['BTC-USD'] });
    await slow.until(() => slow.replayed(), 'slow subscribed and replayed');
    await fast.until(() => fast.replayed(), 'fast subscribed and replayed');
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const N = 20_000;
    const delays: number[] = [];
    const published = new Map<number, number>();
    fast.ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as Msg;
      if (m.type === 'prediction') delays.push(performance.now() - published.get(m.data!.windowEnd)!);
    });
    for (let i = 0; i < N; i += 500) {
      const batch = Array.from({ length: 500 }, (_, j) => prediction('BTC/USD', at(i + j)));
      const now = performance.now();
      for (const p of batch) published.set(p.windowEnd, now);
      await s.bus.publish(topics.predictions, batch);
      await new Promise((r) => setImmediate(r));
    }
    await fast.until(() => fast.predictions().length === N, 'every prediction on the fast client', 30_000);
    assert.deepEqual(ends(fast.predictions()), range(0, N - 1));
    assert.ok(s.hub.stats.droppedSlow >= 1, 'the slow client was dropped');
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await slow.until(() => slow.closed !== undefined, 'the slow client closed', 10_000);
    assert.ok(slow.predictions().length < N);
    assert.ok([1013, 1006].includes(slow.closed!.code), `close code ${slow.closed!.code}`);
    delays.sort((a, b) => a - b);
    t.diagnostic(
      `fast client: ${N} predictions, delay p50 ${delays[N >> 1]!.toFixed(1)} ms, p99 ${delays[Math.floor(N * 0.99)]!.toFixed(1)} ms; slow got ${slow.predictions().length}, closed ${slow.closed!.code}`,
    );
    fast.close();
  });
});

describe('WebSocket /v1/ws, channel errors', () => {
  /** An API with an errors feed over `store` on an in-process bus (closed after the tests). */
  async function serveErrors(store: ErrorsStore, bus = new InProcessBus()) {
    const errors = new ErrorsFeed(store);
    const latest = new LatestPredictions();
    const app = buildApi({ latest, store: new MemoryPredictionsStore(), errors });
    await app.listen({ port: 0, host: '127.0.0.1' });
    await latest.start({ bus, store: new MemoryPredictionsStore(), pairs: ['BTC/USD'] });
    await errors.start({ bus, pairs: ['BTC/USD'] });
    servers.push(async () => {
      await app.close();
      await latest.stop();
      await errors.stop();
      await bus.close();
    });
    return { bus, errors, port: (app.server.address() as { port: number }).port };
  }
  const statuses = (c: Client) =>
    c.msgs
      .filter((m) => m.type === 'prediction_error')
      .map((m) => {
        const e = m.data as unknown as PredictionError;
        return `${(e.windowEnd - T0) / MIN}:${e.status}`;
      });

  test('a client resuming from the store gets a revision published meanwhile, though its windowEnd is not after since', async () => {
    const dir = scratchDir('cc-ws-resume-');
    const real = await openErrorsStore(`duckdb:${join(dir, 'e.duckdb')}`);
    servers.push(() => real.close());
    const p0 = prediction('BTC/USD', at(0));
    const p1 = prediction('BTC/USD', at(1));
    const timedOut = unscorable(p0, 'target_not_closed_in_time', p0.targetTs + 16 * MIN);
    // Both published and stored before this API instance starts: its ring is trusted only after them.
    const bus = new InProcessBus();
    const both = [timedOut, scorePrediction(p1, p1.close, p1.targetTs)];
    await real.write(both);
    await bus.publish(topics.predictionErrors, both);
    // The store's history waits for the test: the replay is held while the revision comes live.
    let historyCalls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const store: ErrorsStore = Object.create(real, {
      history: {
        value: async (...args: Parameters<ErrorsStore['history']>) => {
          historyCalls++;
          await gate;
          return real.history(...args);
        },
      },
    });
    const s = await serveErrors(store, bus);
    const c = await Client.connect(s.port);
    // Away since minute 0's verdict (the time-out): before what the ring covers, so the replay reads the store.
    c.send({ type: 'subscribe', channel: 'errors', pairs: ['BTC-USD'], since: p0.windowEnd });
    await waitFor(
      'the replay reading the store',
      () => historyCalls,
      (n) => n > 0,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    const before = s.errors.stats.received;
    await s.bus.publish(topics.predictionErrors, [scorePrediction(p0, p0.close, p0.targetTs + 30 * MIN)]);
    await waitFor(
      'the feed to take it',
      () => s.errors.stats.received,
      (n) => n > before,
      {
        timeoutMs: 30_000,
        everyMs: 5,
      },
    );
    release();
    await c.until(() => statuses(c).length === 2, 'the replay and the revision');
    await c.barrier();
    // The revision, in the ring by the time the store answers, goes in the replay, in order; not again live.
    assert.deepEqual(statuses(c), ['0:scored', '1:scored']);
    c.close();
  });

  test('a client away when a revision came gets it on resume, from the ring or from the store', async () => {
    const dir = scratchDir('cc-ws-away-');
    const store = await openErrorsStore(`duckdb:${join(dir, 'e.duckdb')}`);
    servers.push(() => store.close());
    const p = [0, 1, 2, 3].map((i) => prediction('BTC/USD', at(i)));
    const scored = (i: number, late = 0) => scorePrediction(p[i]!, p[i]!.close, p[i]!.targetTs + late);
    // What the monitor does: the store, then the topic. Minutes 0 (a time-out) and 1 come before this API starts.
    const bus = new InProcessBus();
    const early = [unscorable(p[0]!, 'target_not_closed_in_time', p[0]!.targetTs + 16 * MIN), scored(1)];
    await store.write(early);
    await bus.publish(topics.predictionErrors, early);
    const s = await serveErrors(store, bus);
    const live = [scored(2), scored(0, 30 * MIN), scored(3)];
    await store.write(live);
    await s.bus.publish(topics.predictionErrors, live);
    await waitFor(
      'the feed to take them',
      () => s.errors.stats.received,
      // 4 at the start (the tail's 2 and the store's 2), then the 3 live ones.
      (n) => n >= 7,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    // Away since minute 2 (within what the ring covers): the revision of minute 0, then minute 3.
    const fromRing = await Client.connect(s.port);
    fromRing.send({ type: 'subscribe', channel: 'errors', pairs: ['BTC-USD'], since: p[2]!.windowEnd });
    await fromRing.until(() => statuses(fromRing).length === 2, 'the replay from the ring');
    await fromRing.barrier();
    assert.deepEqual(statuses(fromRing), ['0:scored', '3:scored']);
    // Away since minute 0, the time-out (before what the ring covers: the store): minutes 1–3, and minute 0 revised.
    const fromStore = await Client.connect(s.port);
    fromStore.send({ type: 'subscribe', channel: 'errors', pairs: ['BTC-USD'], since: p[0]!.windowEnd });
    await fromStore.until(() => statuses(fromStore).length === 4, 'the replay from the store');
    await fromStore.barrier();
    assert.deepEqual(statuses(fromStore), ['0:scored', '1:scored', '2:scored', '3:scored']);
    fromRing.close();
    fromStore.close();
  });

  test('a client subscribed while a time-out is the newest record gets its revision when the candle comes late', async () => {
    const errorsStore = await openErrorsStore(`duckdb:${join(scratchDir('cc-ws-errors-'), 'e.duckdb')}`);
    servers.push(() => errorsStore.close());
    const { bus, errors, port } = await serveErrors(errorsStore);
    // The candle stage is down: the newest verdict is a time-out.
    const p = prediction('BTC/USD', at(0));
    const timedOut = unscorable(p, 'target_not_closed_in_time', p.targetTs + 16 * MIN);
    await bus.publish(topics.predictionErrors, [timedOut]);
    await waitFor(
      'the feed to take it',
      () => errors.stats.received,
      (n) => n === 1,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    const c = await Client.connect(port);
    const verdicts = () =>
      c.msgs
        .filter((m) => m.type === 'prediction_error')
        .map((m) => (m.data as unknown as PredictionError).status);
    c.send({ type: 'subscribe', channel: 'errors', pairs: ['BTC-USD'] });
    await c.until(() => verdicts().length === 1, 'the time-out, replayed');
    // It catches up: the prediction is scored after all, under the same key.
    await bus.publish(topics.predictionErrors, [scorePrediction(p, p.close, p.targetTs + 30 * MIN)]);
    await c.until(() => verdicts().length === 2, 'the revision');
    assert.deepEqual(verdicts(), ['unscorable', 'scored']);
    // The time-out again (a re-publication read after its revision): stale, not sent.
    await bus.publish(topics.predictionErrors, [timedOut]);
    await waitFor(
      'the feed to take it',
      () => errors.stats.received,
      (n) => n === 3,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    await c.barrier();
    assert.deepEqual(verdicts(), ['unscorable', 'scored']);
    c.close();
  });
});
