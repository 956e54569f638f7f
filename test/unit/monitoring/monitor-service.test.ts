import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { AlertsView } from '../../../src/api/alerts-view.ts';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../../src/candles/store/candles-table.ts';
import { metrics, metricsText } from '../../../src/core/metrics.ts';
import { AlertEngine, type AlertSignals, observe } from '../../../src/monitoring/alerts/engine.ts';
import { defaultRules, type RuleInput, RuleSchema } from '../../../src/monitoring/alerts/rules.ts';
import { AlertStates, type Notification } from '../../../src/monitoring/alerts/state.ts';
import { MonitorService } from '../../../src/monitoring/monitor-service.ts';
import { RollingQuality } from '../../../src/monitoring/rolling-quality.ts';
import { scorePrediction } from '../../../src/monitoring/score.ts';
import type { ErrorsStore } from '../../../src/monitoring/store/errors-store.ts';
import type { SubscribeOptions } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { deadLetter } from '../../../src/schemas/dlq.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { errorKey, type PredictionError } from '../../../src/schemas/prediction-error.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { busFailingOnce } from '../../support/failing-once.ts';
import { candle, prediction, T0 } from '../../support/monitor-minutes.ts';
import { scratchDir } from '../../support/scratch.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

/** An errors store in memory whose writes fail while `failing` says so (a database restarting). */
function memoryStore(failing: () => boolean): ErrorsStore & { rows: Map<string, PredictionError> } {
  const rows = new Map<string, PredictionError>();
  const all = () => [...rows.values()];
  return {
    kind: 'duckdb',
    rows,
    async write(records) {
      if (failing()) throw new Error('store unavailable (injected)');
      for (const r of records) rows.set(errorKey(r), r);
    },
    async history() {
      return [];
    },
    async byTargetTime(from, to) {
      return all().filter((r) => r.targetTs >= from && r.targetTs < to);
    },
    async range() {
      return [];
    },
    async columns() {
      return {};
    },
    async maxTargetTs() {
      const ts = all().map((r) => r.targetTs);
      return ts.length === 0 ? undefined : Math.max(...ts);
    },
    async pairs() {
      return [];
    },
    async count() {
      return rows.size;
    },
    async close() {},
  };
}

/** A memory store whose writes (their sizes in `writes`) finish only once `release` is called. */
function heldStore() {
  const store = memoryStore(() => false);
  const writes: number[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const write = store.write.bind(store);
  store.write = async (records) => {
    writes.push(records.length);
    await held;
    return write(records);
  };
  return { store, writes, release };
}

/** Candles 0 … candles−1, then predictions 0 … predictions−1 (each judged as read); resolves at the first write. */
async function judgeUntilFirstWrite(
  bus: InProcessBus,
  writes: readonly number[],
  n: { candles: number; predictions: number },
): Promise<void> {
  await bus.publish(
    topics.candles,
    Array.from({ length: n.candles }, (_, i) => candle(i)),
  );
  await bus.publish(
    topics.predictions,
    Array.from({ length: n.predictions }, (_, i) => prediction(i)),
  );
  await waitFor(
    'the first write',
    () => writes.length,
    (k) => k === 1,
    { timeoutMs: 30_000, everyMs: 5 },
  );
}

/**
 * Publishes `p` and waits until it waits for its candle; then, the candle stage down, moves the wall clock (`setNow`)
 * 20 minutes past its target and brings a candles batch (another pair's): resolves once its time-out is stored.
 */
async function timeOutStored(
  bus: InProcessBus,
  store: ReturnType<typeof memoryStore>,
  svc: MonitorService,
  p: Prediction,
  setNow: (t: number) => void,
): Promise<void> {
  await bus.publish(topics.predictions, [p]);
  await waitFor(
    'waiting',
    () => svc.join.pendingCount(),
    (n) => n === 1,
    { timeoutMs: 30_000, everyMs: 5 },
  );
  setNow(p.targetTs + 20 * 60_000);
  await bus.publish(topics.candles, [{ ...candle(10), pair: 'ETH/USD' }]);
  await waitFor(
    'the time-out stored',
    () => store.rows.get(errorKey(p))?.reason,
    (r) => r === 'target_not_closed_in_time',
    { timeoutMs: 30_000, everyMs: 5 },
  );
}

/** Resolves with `p`'s record once the one stored is scored (a time-out superseded). */
function revisionStored(
  store: ReturnType<typeof memoryStore>,
  p: Prediction,
): Promise<PredictionError | undefined> {
  return waitFor(
    'the revision stored',
    () => store.rows.get(errorKey(p)),
    (e) => e?.status === 'scored',
    {
      timeoutMs: 30_000,
      everyMs: 5,
    },
  );
}

describe('MonitorService: a failed write', () => {
  it('a store write that fails once (database restarting) loses no verdict', async () => {
    const bus = new InProcessBus();
    let writes = 0;
    const store = memoryStore(() => ++writes === 1);
    const svc = new MonitorService(bus, store, { clock: 'event' });
    await svc.start();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 100 }, (_, i) => prediction(i)),
    );
    await svc.caughtUp();
    await bus.publish(
      topics.candles,
      Array.from({ length: 110 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    await svc.stop();
    assert.equal(store.rows.size, 100, 'one verdict per prediction in the store');
  });
});

describe('MonitorService: verdicts stored in the background', () => {
  it('a prediction is committed only once its verdict is stored; what comes during a write goes in one next write', async () => {
    const bus = new InProcessBus();
    const { store, writes, release } = heldStore();
    const svc = new MonitorService(bus, store, { clock: 'event' });
    await svc.start();
    // The group's committed offset (what a restart re-reads from), read from the bus's state: no other reader says it.
    const committed = () => {
      const group = (
        bus as unknown as { groups: Map<string, { committed: Map<number, number> }> }
      ).groups.get(`${topics.predictions.name}\u0000monitor.predictions`)!;
      return [...group.committed.values()].reduce((a, b) => a + b, 0); // one pair: one partition
    };
    const judged = () => svc.quality.sums('BTC/USD', 86_400_000, T0 + 86_400_000).n;
    // The candles first: each prediction is judged as it is read (no wait for its candle).
    await judgeUntilFirstWrite(bus, writes, { candles: 110, predictions: 50 });
    for (let k = 50; k < 100; k += 10)
      await bus.publish(
        topics.predictions,
        Array.from({ length: 10 }, (_, i) => prediction(k + i)),
      );
    await waitFor('all judged', judged, (n) => n === 100, { timeoutMs: 30_000, everyMs: 5 });
    assert.equal(committed(), 0, 'no prediction committed while its verdict is not stored');
    assert.deepEqual(writes, [50], 'one write at a time');
    release();
    await waitFor(
      'all stored',
      () => svc.stats.stored,
      (n) => n === 100,
      { timeoutMs: 30_000, everyMs: 20 },
    );
    assert.deepEqual(writes, [50, 50], 'the verdicts of the five batches read meanwhile in one write');
    assert.equal(store.rows.size, 100);
    // Offsets are committed with the next batch read: all 100 now, the new one waiting for its verdict's write.
    await bus.publish(topics.predictions, [prediction(100)]);
    await waitFor('the stored ones committed', committed, (n) => n === 100, {
      timeoutMs: 30_000,
      everyMs: 20,
    });
    await svc.stop();
  });
});

describe('MonitorService: a partition revoked and assigned back while verdicts are being stored', () => {
  it('keeps the offsets of predictions whose verdicts are not stored yet (the join does not give them again)', async () => {
    // The bus's handler and revoke callback, taken as the monitor gives them (Kafka's revoke-and-reassign, played by
    // hand: the in-process bus has one member here).
    class RecordingBus extends InProcessBus {
      readonly options = new Map<string, SubscribeOptions<unknown>>();
      override subscribe<T>(o: SubscribeOptions<T>) {
        this.options.set(o.topic.name, o as SubscribeOptions<unknown>);
        return super.subscribe(o);
      }
    }
    const bus = new RecordingBus();
    const { store, writes, release } = heldStore();
    const svc = new MonitorService(bus, store, { clock: 'event' });
    await svc.start();
    await judgeUntilFirstWrite(bus, writes, { candles: 20, predictions: 10 });
    // Revoked, assigned back, and read again from the committed offset (0): all ten judged already, none stored.
    const o = bus.options.get(topics.predictions.name)! as SubscribeOptions<Prediction>;
    const partition = 0;
    await o.onRevoke?.([partition]);
    const plan = await o.handle({
      partition,
      signal: new AbortController().signal,
      records: Array.from({ length: 10 }, (_, i) => ({
        topic: topics.predictions.name,
        partition,
        offset: BigInt(i),
        key: 'BTC/USD',
        value: prediction(i),
        timestamp: 0,
      })),
    });
    assert.equal(plan?.get(partition), 0n, 'nothing committed before the verdicts are stored');
    release();
    await waitFor(
      'stored',
      () => svc.stats.stored,
      (n) => n === 10,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    await svc.stop();
  });
});

describe('MonitorService: stopping while the store does not answer', () => {
  it('the stop ends at its deadline, names what was not stored, and commits no prediction whose verdict was not stored', async () => {
    // An errors store that accepts a write and never answers (PostgreSQL behind a partition, a DuckDB file on a hung
    // disk). Verdicts pile up behind its first write until a predictions batch would take them past 10,000: that batch
    // waits for the write in the handler. On the in-process bus a stop waits for the batch in hand, then for the flush:
    // both held for ever.
    const bus = new InProcessBus();
    const lines: { msg: string; verdicts?: number; stopTimeoutMs?: number }[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const store = memoryStore(() => false);
    let writes = 0;
    store.write = () => {
      writes++;
      return new Promise<void>(() => {});
    };
    const svc = new MonitorService(bus, store, { clock: 'event', logger, stopTimeoutMs: 500 });
    await svc.start();
    const n = 12_500;
    await bus.publish(
      topics.candles,
      Array.from({ length: n + 10 }, (_, i) => candle(i)),
    );
    await bus.publish(
      topics.predictions,
      Array.from({ length: n }, (_, i) => prediction(i)),
    );
    const unstored = (svc as unknown as { unstored: Set<string> }).unstored;
    const inHand = (bus as unknown as { groups: Map<string, { members: { busy: number }[] }> }).groups.get(
      `${topics.predictions.name}\u0000monitor.predictions`,
    )!;
    // Past 8,000 unstored, a batch of 2,000 waits for the write, in the handler.
    await waitFor(
      'a batch waiting in hand for the write',
      () => ({ unstored: unstored.size, busy: inHand.members[0]?.busy ?? 0 }),
      (w) => w.unstored > 8_000 && w.busy > 0,
      { timeoutMs: 60_000, everyMs: 5 },
    );
    assert.equal(writes, 1, 'one write, never answered');
    const judged = unstored.size;
    const began = performance.now();
    await settlesWithin(svc.stop(), 20_000, 'the stop');
    const took = performance.now() - began;
    assert.ok(
      took >= 450 && took < 10_000,
      `the stop waited for its deadline, not for ever (${Math.round(took)} ms)`,
    );
    const warning = lines.find((l) => l.msg.startsWith('stopped with'));
    assert.equal(warning?.verdicts, judged, 'the warning counts the verdicts not stored');
    assert.equal(warning?.stopTimeoutMs, 500);
    assert.match(warning?.msg ?? '', /did not answer within 500 ms; their predictions were not committed/);
    // Nothing of the predictions committed: the next start (Kafka) reads them again and judges them.
    assert.equal(
      await bus.groupLag(topics.predictions, 'monitor.predictions'),
      n,
      'every prediction whose verdict was not stored is left uncommitted',
    );
    await bus.close();
  });
});

describe('MonitorService: a fast replay of predictions judged at once', () => {
  it('does not hold their publisher for ever behind the bus’s lag limit (offsets move only when a batch is read)', async () => {
    // 60,000 predictions whose candles are all there: each judged as it is read, its offset kept until its verdict
    // is stored. Unbounded, the unstored verdicts held the group past the in-process bus's lag limit (50,000), the
    // publisher waited for a commit, and no batch came to make one.
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const svc = new MonitorService(bus, store, { clock: 'event' });
    await svc.start();
    const n = 60_000;
    await bus.publish(
      topics.candles,
      Array.from({ length: n + 10 }, (_, i) => candle(i)),
    );
    const replay = (async () => {
      for (let k = 0; k < n; k += 2_000)
        await bus.publish(
          topics.predictions,
          Array.from({ length: 2_000 }, (_, i) => prediction(k + i)),
        );
      await svc.caughtUp();
    })();
    await settlesWithin(
      replay,
      60_000,
      () => `the replay (${svc.stats.stored} verdicts stored)`,
      () => void bus.close(),
    );
    assert.equal(store.rows.size, n);
    await svc.stop();
  });
});

describe('MonitorService: a slow store', () => {
  it('never holds more than 10,000 verdicts unstored: the batch that would cross the bound waits, the write in flight counted', async () => {
    // The store holds its writes (a store under load) until 10,000 verdicts are unwritten or every batch is
    // published: the verdicts of the batches read meanwhile pile up, however fast or slow the machine. The bound
    // was checked on the rows queued alone, before the batch: the batch that crossed it was judged, and the rows of the
    // write in flight were not counted (14,000 unstored measured, with batches of 2,000).
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const write = store.write.bind(store);
    let published = false;
    store.write = async (records) => {
      await waitFor('the store to be released', () => published || peak >= 10_000, Boolean, {
        timeoutMs: 60_000,
        everyMs: 5,
      });
      return write(records);
    };
    const svc = new MonitorService(bus, store, { clock: 'event', logger: pino({ level: 'silent' }) });
    // The verdicts not written yet, after every batch's verdicts are queued.
    const writes = (
      svc as unknown as { verdictWrites: { add(v: readonly unknown[]): void; unwritten: number } }
    ).verdictWrites;
    const add = writes.add.bind(writes);
    let peak = 0;
    writes.add = (v) => {
      add(v);
      peak = Math.max(peak, writes.unwritten);
    };
    await svc.start();
    const n = 30_000;
    await bus.publish(
      topics.candles,
      Array.from({ length: n + 10 }, (_, i) => candle(i)),
    );
    for (let k = 0; k < n; k += 2_000)
      await bus.publish(
        topics.predictions,
        Array.from({ length: 2_000 }, (_, i) => prediction(k + i)),
      );
    published = true;
    await settlesWithin(svc.caughtUp(), 60_000, () => `every verdict stored (${svc.stats.stored})`);
    assert.equal(store.rows.size, n);
    assert.ok(peak > 5_000, `the store was slow enough for verdicts to pile up (${peak})`);
    assert.ok(peak <= 10_000, `at most 10,000 verdicts unstored at once (${peak})`);
    await svc.stop();
    await bus.close();
  });

  it('candles that mature a backlog of waiting predictions: the next candle waits while 10,000 verdicts are unstored', async () => {
    // 15,000 predictions wait for their candles (the candle stage was down); then the candles come in a burst. Each
    // candle scores the prediction that waited for it: before, the candles path had no bound, and every candle read
    // while the store was slow queued its verdicts — up to the day of predictions the join holds, all in memory.
    const bus = new InProcessBus();
    const { store, release } = heldStore();
    const svc = new MonitorService(bus, store, { clock: 'event', logger: pino({ level: 'silent' }) });
    const writes = (
      svc as unknown as { verdictWrites: { add(v: readonly unknown[]): void; unwritten: number } }
    ).verdictWrites;
    const add = writes.add.bind(writes);
    let peak = 0;
    writes.add = (v) => {
      add(v);
      peak = Math.max(peak, writes.unwritten);
    };
    await svc.start();
    const n = 15_000;
    await bus.publish(
      topics.predictions,
      Array.from({ length: n }, (_, i) => prediction(i)),
    );
    await waitFor(
      'every prediction waiting for its candle',
      () => svc.join.pendingCount(),
      (k) => k === n,
      { timeoutMs: 60_000, everyMs: 5 },
    );
    const candles = n + 5; // candle i + 5 closes at prediction i's target time
    await bus.publish(
      topics.candles,
      Array.from({ length: candles }, (_, i) => candle(i)),
    );
    // The store holds its first write: either every candle is taken (no bound) or the candles wait for the store.
    await waitFor(
      'every candle taken, or the candles held for the store',
      () => ({ candles: svc.join.stats.candles, held: svc.stats.candlesHeldForStore ?? 0 }),
      (s) => s.candles === candles || s.held > 0,
      { timeoutMs: 60_000, everyMs: 5 },
    );
    assert.ok(peak <= 10_000, `at most 10,000 verdicts unstored while the store is slow (${peak})`);
    assert.ok(svc.join.stats.candles < candles, 'the next candle waits for the store');
    release();
    await settlesWithin(svc.caughtUp(), 60_000, () => `every verdict stored (${svc.stats.stored})`);
    assert.equal(svc.join.stats.candles, candles);
    assert.equal(store.rows.size, n);
    assert.ok(
      [...store.rows.values()].every((e) => e.status === 'scored'),
      'every prediction scored against its candle (none timed out while the candles waited)',
    );
    assert.ok(peak <= 10_000, `at most 10,000 verdicts unstored at once (${peak})`);
    await svc.stop();
    await bus.close();
  });
  it('one candle that decides a backlog (it closes a long gap): its verdicts too wait for the store past 10,000', async () => {
    // 15,000 predictions wait for their candles; the one candle that comes is the last one's target minute, and proves
    // a gap for every other: 15,000 verdicts of one candle. Before, they were all judged at once, past the bound (a
    // candle was held only before it was taken): 15,000 unstored under a store that holds its writes.
    const bus = new InProcessBus();
    const { store, release } = heldStore();
    const svc = new MonitorService(bus, store, { clock: 'event', logger: pino({ level: 'silent' }) });
    const writes = (
      svc as unknown as { verdictWrites: { add(v: readonly unknown[]): void; unwritten: number } }
    ).verdictWrites;
    const add = writes.add.bind(writes);
    let peak = 0;
    writes.add = (v) => {
      add(v);
      peak = Math.max(peak, writes.unwritten);
    };
    await svc.start();
    const n = 15_000;
    await bus.publish(
      topics.predictions,
      Array.from({ length: n }, (_, i) => prediction(i)),
    );
    await waitFor(
      'every prediction waiting for its candle',
      () => svc.join.pendingCount(),
      (k) => k === n,
      { timeoutMs: 60_000, everyMs: 5 },
    );
    await bus.publish(topics.candles, [candle(n - 1 + 5)]);
    // The store holds its first write: either the candle's verdicts are all judged (no bound), or they wait for it.
    await waitFor(
      "the candle's verdicts judged, or held for the store",
      () => ({
        judged: svc.join.stats.scored + svc.join.stats.unscorable,
        held: svc.stats.candlesHeldForStore,
      }),
      (s) => s.judged === n || s.held > 0,
      { timeoutMs: 60_000, everyMs: 5 },
    );
    assert.ok(peak <= 10_000, `at most 10,000 verdicts unstored while the store is slow (${peak})`);
    release();
    await settlesWithin(svc.caughtUp(), 60_000, () => `every verdict stored (${svc.stats.stored})`);
    assert.equal(store.rows.size, n);
    const reasons = new Map<string, number>();
    for (const e of store.rows.values()) {
      const k = e.reason ?? e.status;
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(reasons), { no_candle_at_target: n - 1, scored: 1 });
    assert.equal(svc.join.pendingCount(), 0);
    assert.ok(peak <= 10_000, `at most 10,000 verdicts unstored at once (${peak})`);
    await svc.stop();
    await bus.close();
  });
});

describe('MonitorService: alerts on the event clock', () => {
  /** A started monitor on the event clock with one rule (skill below 0 over 1 h, 10 verdicts, for 15 minutes). */
  async function alertingMonitor() {
    const bus = new InProcessBus();
    const engine = new AlertEngine(
      [RuleSchema.parse({ name: 'worse', kind: 'skill_below', window: '1h', minCount: 10, for: '15m' })],
      undefined,
      pino({ level: 'silent' }),
    );
    const sent: Notification[] = [];
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event', alerts: { engine } },
    );
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    return { bus, svc, sent };
  }

  it('a replay that brings hours in one batch: the times in between are evaluated, so a `for` of 15 minutes fires', async () => {
    // Every prediction 1 below the close: each misses by 6 where persistence misses by 5 (the closes rise by 1 a
    // minute), so the skill is negative from the first verdict on.
    const { bus, svc, sent } = await alertingMonitor();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 240 }, (_, i) => ({ ...prediction(i), predictedClose: 99 + i })),
    );
    await svc.caughtUp();
    // Four hours of candles in one publish: one batch, one evaluation at its end before.
    await bus.publish(
      topics.candles,
      Array.from({ length: 250 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    await svc.stop();
    const firing = sent.filter((n) => n.status === 'firing');
    assert.equal(firing.length, 1, JSON.stringify(sent));
    assert.equal(firing[0]!.key, 'BTC/USD');
    // It fired at the event time a live monitor would have: 15 minutes after 10 verdicts were in (the 10th verdict
    // is of the prediction made at the end of minute 9, i = 9, matured at minute 15). Before, within one of 240
    // evaluations spread over the batch (and this bound said minute 16: the step hid the minute).
    const tenth = T0 + 15 * 60_000;
    assert.equal(new Date(firing[0]!.at).toISOString(), new Date(tenth + 15 * 60_000).toISOString());
  });

  it("predictions read a pair at a time (one pair's whole day before the other's): each pair fires at its own hour", async () => {
    // Candles of both pairs first (a replay's candles run ahead), then a day of BTC's predictions, then ETH's: the
    // clock must wait for ETH's verdicts, or ETH's minutes would all lie behind it and never be evaluated.
    const { bus, svc, sent } = await alertingMonitor();
    const eth = <T extends { pair: string }>(x: T): T => ({ ...x, pair: 'ETH/USD' });
    await bus.publish(topics.candles, [
      ...Array.from({ length: 250 }, (_, i) => candle(i)),
      ...Array.from({ length: 250 }, (_, i) => eth(candle(i))),
    ]);
    await svc.caughtUp();
    const bad = (i: number) => ({ ...prediction(i), predictedClose: 99 + i });
    await bus.publish(
      topics.predictions,
      Array.from({ length: 240 }, (_, i) => bad(i)),
    );
    await svc.caughtUp();
    assert.equal(sent.length, 0, 'nothing before the other pair has verdicts');
    await bus.publish(
      topics.predictions,
      Array.from({ length: 240 }, (_, i) => eth(bad(i))),
    );
    await svc.caughtUp();
    await svc.stop();
    const firing = sent.filter((n) => n.status === 'firing');
    assert.deepEqual(firing.map((n) => n.key).sort(), ['BTC/USD', 'ETH/USD'], JSON.stringify(sent));
    for (const n of firing)
      assert.ok(n.at < T0 + 60 * 60_000, `${n.key} fired at its hour: ${new Date(n.at).toISOString()}`);
  });

  it('a batch of days: the hold-down of `resolveAfter` counts from the last minute the condition held, as live', async () => {
    // `run --replay 2022-05` read ETH's verdicts of 2022-05-09 in batches spanning 67 hours, evaluated every 16 min 40 s
    // of event time: the 24 h skill back below −2 % at 20:46–20:50 fell between two evaluations, and the alert resolved
    // at 21:17:40, 27 minutes after it last held (a monitor evaluating every 15 s resolves it at 21:51).
    // Here: skill below 0 over 1 h, for 15 minutes, resolved after an hour clear; six days of verdicts in one batch.
    // The prediction of minute i is judged at target minute i + 6: 6 off (1 below the close) where persistence is 5
    // off, or exact. Bad for target minutes 6–125: fires at minute 30 (10 verdicts at 15, held 15 minutes); clear from
    // 135 (≤ 50 of the 60 minutes bad). Exact for 126–136, bad again for 137–187: 51 of the hour's 60 minutes at
    // 187–196, so the condition holds again for those 10 minutes, 52 minutes into the hour of `resolveAfter`, and
    // clears at 197 for good. Live: resolved at 197 + 60 = 257.
    const bus = new InProcessBus({ maxBatch: 20_000 });
    const engine = new AlertEngine(
      [
        RuleSchema.parse({
          name: 'worse',
          kind: 'skill_below',
          window: '1h',
          minCount: 10,
          for: '15m',
          resolveAfter: '1h',
        }),
      ],
      undefined,
      pino({ level: 'silent' }),
    );
    const sent: Notification[] = [];
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event', alerts: { engine }, logger: pino({ level: 'silent' }) },
    );
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    // Six days in one batch.
    const days = 6;
    const bad = (i: number) => i < 120 || (i >= 131 && i < 182);
    await bus.publish(
      topics.predictions,
      Array.from({ length: days * 1_440 }, (_, i) => ({
        ...prediction(i),
        predictedClose: bad(i) ? 99 + i : 105 + i,
      })),
    );
    await svc.caughtUp();
    await bus.publish(
      topics.candles,
      Array.from({ length: days * 1_440 + 6 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    await svc.stop();
    const minute = (t: number) => (t - T0) / 60_000;
    assert.deepEqual(
      sent.map((n) => `${n.status} at minute ${minute(n.at)}`),
      ['firing at minute 30', 'resolved at minute 257'],
    );
  });

  /**
   * Replays predictions `bad` (one a minute from T0: 1 below the close, 6 off where persistence is 5 off, or exact) with
   * the candles in batches of the sizes `batches` (cycled) through a monitor on the event clock evaluating `rules`, and
   * evaluates the same rules every 15 s of event time on the stored verdicts, as a live monitor would: the
   * notifications of each, as `rule status startsAt at`.
   */
  async function replayedAndLive(
    rules: ReturnType<typeof RuleSchema.parse>[],
    bad: readonly boolean[],
    batches: readonly number[],
  ): Promise<{ replayed: string[]; live: string[] }> {
    const bus = new InProcessBus({ maxBatch: 20_000 });
    const engine = new AlertEngine(rules, undefined, pino({ level: 'silent' }));
    const sent: Notification[] = [];
    const store = memoryStore(() => false);
    const svc = new MonitorService(bus, store, {
      clock: 'event',
      alerts: { engine },
      logger: pino({ level: 'silent' }),
    });
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    await bus.publish(
      topics.predictions,
      bad.map((b, i) => ({ ...prediction(i), predictedClose: b ? 99 + i : 105 + i })),
    );
    await svc.caughtUp();
    const candles = Array.from({ length: bad.length + 6 }, (_, i) => candle(i));
    for (let at = 0, k = 0; at < candles.length; k++) {
      const size = batches[k % batches.length]!;
      await bus.publish(topics.candles, candles.slice(at, at + size));
      await svc.caughtUp();
      at += size;
    }
    await svc.stop();
    const verdicts = [...store.rows.values()].sort((a, b) => a.targetTs - b.targetTs);
    const quality = new RollingQuality();
    for (const v of verdicts) quality.add(v);
    const states = new AlertStates(() => 0);
    const live: Notification[] = [];
    for (let t = verdicts[0]!.targetTs; t <= verdicts.at(-1)!.targetTs; t += 15_000) {
      const signals = { now: t, live: false, quality } as AlertSignals;
      live.push(
        ...states.update(
          rules.flatMap((r) => observe(r, signals)),
          t,
        ),
      );
    }
    const said = (ns: Notification[]) => ns.map((n) => `${n.rule} ${n.status} ${n.startsAt} ${n.at}`);
    return { replayed: said(sent), live: said(live) };
  }

  it('property: over random streams in random batches, a replay sends what a monitor evaluating every 15 s sends', async () => {
    // The reference is the live cadence: the rules evaluated on the stored verdicts every 15 s of event time. Runs of
    // bad and exact predictions of random lengths keep the hour's skill hovering at the threshold, and the candles come
    // in batches of random sizes (each its own catch-up). One rule with whole-minute durations (caught up a minute at a
    // time) and one with `for: 30s` (every 15 s).
    const rules = [
      RuleSchema.parse({
        name: 'hold',
        kind: 'skill_below',
        window: '1h',
        minCount: 10,
        for: '15m',
        resolveAfter: '1h',
      }),
      RuleSchema.parse({
        name: 'flap',
        kind: 'skill_below',
        window: '1h',
        minCount: 10,
        for: '30s',
        resolveAfter: '5m',
      }),
    ];
    const stream = fc.record({
      runs: fc.array(fc.record({ bad: fc.boolean(), minutes: fc.integer({ min: 1, max: 40 }) }), {
        minLength: 20,
        maxLength: 60,
      }),
      batches: fc.array(fc.integer({ min: 1, max: 1_500 }), { minLength: 1, maxLength: 8 }),
    });
    await fc.assert(
      fc.asyncProperty(stream, async ({ runs, batches }) => {
        const bad = runs.flatMap((r) => Array.from({ length: r.minutes }, () => r.bad));
        const { replayed, live } = await replayedAndLive(rules, bad, batches);
        assert.deepEqual(replayed, live);
      }),
      { numRuns: 12 },
    );
  });

  it('property: a batch spanning more than the 7-day window loses no minute: the replay sends what a monitor evaluating every 15 s sends', async () => {
    // The rolling quality keeps 7 days: pruned to a week behind the newest verdict before the catch-up evaluated the
    // batch, a batch of 8 days lost its first day, and the rules saw an empty window there (no alert fired, or a firing
    // one resolved). Runs of bad and exact predictions over 7.5–8 days, the candles in batches of which at least one
    // spans more than a week; rules on the hour, the day and the week.
    const rules = [
      RuleSchema.parse({
        name: 'hour',
        kind: 'skill_below',
        window: '1h',
        minCount: 10,
        for: '15m',
        resolveAfter: '1h',
      }),
      RuleSchema.parse({
        name: 'flap',
        kind: 'skill_below',
        window: '1h',
        minCount: 10,
        for: '30s',
        resolveAfter: '5m',
      }),
      RuleSchema.parse({
        name: 'day',
        kind: 'skill_below',
        window: '24h',
        minCount: 60,
        for: '30m',
        resolveAfter: '1h',
      }),
      RuleSchema.parse({
        name: 'week',
        kind: 'skill_below',
        window: '7d',
        threshold: -0.05,
        minCount: 60,
        for: '1h',
      }),
    ];
    const week = 7 * 1_440;
    const stream = fc.record({
      runs: fc.array(fc.record({ bad: fc.boolean(), minutes: fc.integer({ min: 1, max: 600 }) }), {
        minLength: 60,
        maxLength: 60,
      }),
      length: fc.integer({ min: week + 720, max: 8 * 1_440 }),
      batches: fc
        .tuple(
          fc.integer({ min: week + 1, max: 8 * 1_440 + 6 }),
          fc.array(
            fc.oneof(fc.integer({ min: 1, max: 1_500 }), fc.integer({ min: week + 1, max: 8 * 1_440 })),
            {
              maxLength: 4,
            },
          ),
        )
        .map(([big, others]) => [big, ...others]),
    });
    await fc.assert(
      fc.asyncProperty(stream, async ({ runs, length, batches }) => {
        const pattern = runs.flatMap((r) => Array.from({ length: r.minutes }, () => r.bad));
        const bad = Array.from({ length }, (_, i) => pattern[i % pattern.length]!);
        const { replayed, live } = await replayedAndLive(rules, bad, batches);
        assert.ok(live.length > 0, 'the stream raises alerts');
        assert.deepEqual(replayed, live);
      }),
      { numRuns: 3 },
    );
  });

  it('a year-long jump in event time costs the evaluations that can change something, not one a minute', async () => {
    // A day of verdicts, then none for a year (a replay of two recordings a year apart), then one: caught up every
    // minute, the jump was 525,600 evaluations (~25 s of CPU on the event loop). What can change after the day: its
    // minutes leaving the rules' windows (an hour and a day after each), and the hold-downs running out.
    const bus = new InProcessBus({ maxBatch: 20_000 });
    const engine = new AlertEngine(defaultRules(), undefined, pino({ level: 'silent' }));
    let evaluations = 0;
    const evaluate = engine.evaluate.bind(engine);
    engine.evaluate = (signals) => {
      evaluations++;
      return evaluate(signals);
    };
    const sent: Notification[] = [];
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event', alerts: { engine }, logger: pino({ level: 'silent' }) },
    );
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    const day = 1_440;
    const year = 365 * day;
    // Worse than persistence all day: model-worse-than-persistence (24 h, 720 verdicts, for 15 minutes) fires.
    await bus.publish(
      topics.predictions,
      Array.from({ length: day }, (_, i) => ({ ...prediction(i), predictedClose: 99 + i })),
    );
    await bus.publish(
      topics.candles,
      Array.from({ length: day + 6 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    const beforeJump = evaluations;
    await bus.publish(topics.predictions, [prediction(year)]);
    // And the candle after its target: a pair whose verdicts have reached its newest candle holds no clock.
    await bus.publish(topics.candles, [candle(year + 5), candle(year + 6)]);
    await svc.caughtUp();
    await svc.stop();
    const jump = evaluations - beforeJump;
    assert.ok(jump <= 2 * (day + 60) + 10, `${jump} evaluations for a year-long jump`);
    // What fired on the day resolved in the jump, once the day's verdicts had left the windows.
    const rulesThat = (status: string) =>
      sent
        .filter((n) => n.status === status)
        .map((n) => n.rule)
        .sort();
    assert.ok(rulesThat('firing').includes('model-worse-than-persistence'), JSON.stringify(sent));
    assert.deepEqual(rulesThat('resolved'), rulesThat('firing'));
  });
});

describe('MonitorService: alerts on the event clock, verdicts out of time order', () => {
  /**
   * Replays predictions `bad` (one a minute from T0: 1 below the close, 6 off where persistence is 5 off, or exact)
   * through a monitor on the event clock evaluating `rules`: every candle first, then the predictions in chunks of the
   * sizes `chunks` (cycled), published in the order `order` (chunk indices), each chunk its own batch — so a chunk of
   * earlier minutes brings verdicts behind the alerts' clock, as another partition read late or a time-out scored
   * after all do. The wall clock (reminders are paced by it too) moves `wallStepMs` at each chunk.
   *
   * The reference is a monitor evaluating every 15 s of its clock: each time the monitor evaluates the rules, the
   * reference has evaluated them every 15 s since its previous evaluation, on what the monitor holds at that moment
   * (the verdicts a live monitor would have had then). The notifications of each, as `rule status repeat startsAt at`.
   */
  async function replayedAndEvery15s(
    rules: ReturnType<typeof RuleSchema.parse>[],
    bad: readonly boolean[],
    chunks: readonly number[],
    order: (count: number) => number[],
    wallStepMs = 0,
  ): Promise<{ replayed: string[]; reference: string[] }> {
    let wall = Date.UTC(2026, 0, 1);
    const wallNow = () => wall;
    const bus = new InProcessBus({ maxBatch: 20_000 });
    const engine = new AlertEngine(rules, undefined, pino({ level: 'silent' }), undefined, wallNow);
    const sent: Notification[] = [];
    const reference = new AlertStates(wallNow);
    const referenceSent: Notification[] = [];
    let referenceAt: number | undefined;
    const evaluate = engine.evaluate.bind(engine);
    engine.evaluate = (signals) => {
      const at = (t: number) =>
        referenceSent.push(
          ...reference.update(
            rules.flatMap((r) => observe(r, { ...signals, now: t })),
            t,
            signals.live,
          ),
        );
      for (let t = referenceAt! + 15_000; t < signals.now; t += 15_000) at(t);
      at(signals.now);
      referenceAt = signals.now;
      return evaluate(signals);
    };
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event', alerts: { engine }, logger: pino({ level: 'silent' }) },
    );
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    await bus.publish(
      topics.candles,
      Array.from({ length: bad.length + 6 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    const predictions = bad.map((b, i) => ({ ...prediction(i), predictedClose: b ? 99 + i : 105 + i }));
    const parts: Prediction[][] = [];
    for (let at = 0, k = 0; at < predictions.length; k++) {
      const size = chunks[k % chunks.length]!;
      parts.push(predictions.slice(at, at + size));
      at += size;
    }
    for (const k of order(parts.length)) {
      // The monitor's first evaluation catches up from its first verdict's target time: so does the reference.
      referenceAt ??= Math.min(...parts[k]!.map((p) => p.targetTs));
      await bus.publish(topics.predictions, parts[k]!);
      await svc.caughtUp();
      wall += wallStepMs;
    }
    await svc.stop();
    const said = (ns: Notification[]) =>
      ns.map((n) => `${n.rule} ${n.status} ${n.repeat} ${n.startsAt} ${n.at}`);
    return { replayed: said(sent), reference: said(referenceSent) };
  }

  /** Chunk indices 0 … count − 1, with the pairs `swaps` (taken modulo count) exchanged in turn. */
  const swapped =
    (swaps: readonly [number, number][]) =>
    (count: number): number[] => {
      const order = Array.from({ length: count }, (_, i) => i);
      for (const [a, b] of swaps) {
        const i = a % count;
        const j = b % count;
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      return order;
    };

  const rules = [
    RuleSchema.parse({
      name: 'hold',
      kind: 'skill_below',
      window: '1h',
      minCount: 10,
      for: '15m',
      resolveAfter: '1h',
    }),
    RuleSchema.parse({
      name: 'flap',
      kind: 'skill_below',
      window: '1h',
      minCount: 10,
      for: '30s',
      resolveAfter: '5m',
      repeatEvery: '20m',
    }),
    RuleSchema.parse({
      name: 'day',
      kind: 'skill_below',
      window: '24h',
      minCount: 30,
      for: '10m',
      resolveAfter: '30m',
      repeatEvery: '30m',
    }),
  ];

  it('verdicts behind the last evaluation, then a gap: the stretch they make hold is evaluated, as every 15 s', async () => {
    // A day's skill below 0 (≥ 30 verdicts, for 10 minutes). Target minutes 6–10 exact, then 66–67 (the clock jumps
    // there and the rule is evaluated: 7 verdicts), then 11–65 bad, behind the clock (no evaluation: it did not move),
    // then 206–265 exact. Every 15 s, from 67:15 the day holds 55 bad of 62 (skill −6.5 %): pending, firing at 77:15,
    // resolved 30 minutes after the exact ones bring it back to 0 (at 209: 66 verdicts). Evaluated only where a window's minutes move, the
    // first time after 67 was 206 (a minute comes in; none leaves the day before 1,446): the alert never fired.
    const day = rules.filter((r) => r.name === 'day');
    const bad = Array.from({ length: 260 }, (_, i) => i >= 5 && i < 60);
    const { replayed, reference } = await replayedAndEvery15s(day, bad, [5, 55, 2, 138, 60], () => [
      0, 2, 1, 4,
    ]);
    const minute = (t: string) => (Number(t) - T0) / 60_000;
    assert.deepEqual(
      reference
        .map((n) => n.split(' '))
        .map(([rule, status, , , at]) => `${rule} ${status} at minute ${minute(at!)}`),
      ['day firing at minute 77.25', 'day resolved at minute 239'],
    );
    assert.deepEqual(replayed, reference);
  });

  it('a reminder the wall clock held back goes at the next 15 s once it lets it, not at the next change of a window', async () => {
    // Bad all along, an hour of verdicts a batch, the wall clock an hour on at each: the `flap` rule (for 30 s, a
    // reminder every 20 minutes) fires at target minute 15:30; its reminder due at 35:30 is held back by the wall
    // clock (the batch is caught up on in an instant), and the next batch's wall clock lets it go: every 15 s, at the
    // first evaluation of that batch (65:15). It went with the next evaluation where a window changes (66:00; with a
    // gap in the verdicts, hours later).
    const flap = rules.filter((r) => r.name === 'flap');
    const bad = Array.from({ length: 180 }, () => true);
    const { replayed, reference } = await replayedAndEvery15s(
      flap,
      bad,
      [60],
      (n) => [...Array(n).keys()],
      3_600_000,
    );
    const minute = (t: string) => (Number(t) - T0) / 60_000;
    assert.deepEqual(
      reference
        .map((n) => n.split(' '))
        .map(([, status, repeat, , at]) => `${status} ${repeat} at minute ${minute(at!)}`),
      ['firing 0 at minute 15.5', 'firing 1 at minute 65.25', 'firing 2 at minute 125.25'],
    );
    assert.deepEqual(replayed, reference);
  });

  it('property: verdicts in random order, in random chunks: a replay sends what a monitor evaluating every 15 s sends', async () => {
    const stream = fc.record({
      runs: fc.array(fc.record({ bad: fc.boolean(), minutes: fc.integer({ min: 1, max: 40 }) }), {
        minLength: 10,
        maxLength: 30,
      }),
      chunks: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
      swaps: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 6 }),
      wallStepMs: fc.constantFrom(0, 10 * 60_000, 3_600_000),
    });
    await fc.assert(
      fc.asyncProperty(stream, async ({ runs, chunks, swaps, wallStepMs }) => {
        const bad = runs.flatMap((r) => Array.from({ length: r.minutes }, () => r.bad));
        const { replayed, reference } = await replayedAndEvery15s(
          rules,
          bad,
          chunks,
          swapped(swaps),
          wallStepMs,
        );
        assert.deepEqual(replayed, reference);
      }),
      { numRuns: 60 },
    );
  });
});

describe('MonitorService: restarted behind a backlog of candles', () => {
  // 20 hours of candles and their predictions in the topics before the monitor reads them (an outage; within the day
  // of closes the join keeps), the predictions read before the candle backlog reaches their minutes. Each prediction
  // has its candle, so each must be scored — none `target_not_closed_in_time` because the wall clock (three days
  // on) or another pair's candles, read ahead on their own partition, are past its target.
  const minutes = 20 * 60;
  const verdicts = (rows: Iterable<PredictionError>) => {
    const out: Record<string, number> = {};
    for (const r of rows) {
      const k = `${r.pair} ${r.status} ${r.reason ?? ''}`.trim();
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  };

  it('wall clock: every prediction scored once its candle is read, none timed out meanwhile', async () => {
    // Both topics filled before the start; the candles' first batch waits until every prediction is waiting.
    let predictionsRead!: Promise<unknown>;
    class CandlesAfterPredictions extends InProcessBus {
      override subscribe<T>(o: SubscribeOptions<T>) {
        if (o.topic.name !== topics.candles.name) return super.subscribe(o);
        let first = true; // one pair: one partition, one batch in hand at a time
        return super.subscribe({
          ...o,
          handle: async (b) => {
            if (first) await predictionsRead;
            first = false;
            return o.handle(b);
          },
        });
      }
    }
    const bus = new CandlesAfterPredictions({ maxBatch: 50 });
    const store = memoryStore(() => false);
    const svc = new MonitorService(bus, store, { clock: 'wall', now: () => T0 + 3 * 86_400_000 });
    predictionsRead = waitFor(
      'every prediction waiting',
      () => svc.join.pendingCount(),
      (n) => n === minutes,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    await bus.publish(
      topics.candles,
      Array.from({ length: minutes + 10 }, (_, i) => candle(i)),
    );
    await bus.publish(
      topics.predictions,
      Array.from({ length: minutes }, (_, i) => prediction(i)),
    );
    await svc.start();
    await predictionsRead;
    await svc.caughtUp();
    assert.deepEqual(verdicts(store.rows.values()), { 'BTC/USD scored': minutes });
    await svc.stop();
  });

  it("event clock: another pair's candles read ahead on their own partition time out nothing of this pair", async () => {
    // The predictions first (no candle: the event clock has not started, nothing can time out); then both pairs'
    // candles at once, each partition read in one batch (BTC's first: partitions 1 and 3 of 4), whose newest candle
    // is 20 hours past ETH's waiting predictions.
    const bus = new InProcessBus({ maxBatch: 2_000 });
    const store = memoryStore(() => false);
    const svc = new MonitorService(bus, store, { clock: 'event' });
    const pairs = ['BTC/USD', 'ETH/USD'];
    await svc.start();
    await bus.publish(
      topics.predictions,
      pairs.flatMap((pair) => Array.from({ length: minutes }, (_, i) => ({ ...prediction(i), pair }))),
    );
    await waitFor(
      'every prediction waiting',
      () => svc.join.pendingCount(),
      (n) => n === pairs.length * minutes,
      { timeoutMs: 30_000, everyMs: 5 },
    );
    await bus.publish(
      topics.candles,
      pairs.flatMap((pair) => Array.from({ length: minutes + 10 }, (_, i) => ({ ...candle(i), pair }))),
    );
    await svc.caughtUp();
    assert.deepEqual(verdicts(store.rows.values()), { 'BTC/USD scored': minutes, 'ETH/USD scored': minutes });
    await svc.stop();
  });
});

describe('MonitorService: a candle that comes after its prediction timed out', () => {
  it('stores the scored verdict in place of the unscorable one, and the rolling quality follows', async () => {
    let now = T0;
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const svc = new MonitorService(bus, store, { clock: 'wall', now: () => now });
    await svc.start();
    const p = prediction(0); // target: the close of candle(5)
    await timeOutStored(bus, store, svc, p, (t) => {
      now = t;
    });
    // It catches up: the target minute's candle comes after all.
    now = p.targetTs + 40 * 60_000;
    await bus.publish(topics.candles, [candle(5)]);
    const stored = await revisionStored(store, p);
    assert.deepEqual([stored!.actualClose, stored!.latenessMs], [candle(5).close, 40 * 60_000]);
    const sums = svc.quality.sums('BTC/USD', 86_400_000, now);
    assert.deepEqual([sums.n, sums.unscorable], [1, 0]);
    assert.deepEqual(
      [svc.join.stats.scored, svc.join.stats.unscorable, svc.join.stats.lateScored],
      [1, 0, 1],
    );
    assert.deepEqual(
      [svc.stats.stored, svc.stats.revised, store.rows.size],
      [2, 1, 1],
      'two records stored, the second a revision: one prediction with a verdict',
    );
    await svc.stop();
  });
});

describe('MonitorService: cryptocast_error_records_total', () => {
  it('counts records, and tells a revision apart: a time-out scored late is one prediction, two records', async () => {
    // The counter counts the records published (the topic carries both); before, a revision was a second `scored`
    // no reader could tell from a prediction scored in time, so the sum over statuses read as predictions overcounted.
    let now = T0;
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const svc = new MonitorService(bus, store, { clock: 'wall', now: () => now });
    await svc.start();
    const pair = 'SOL/USD'; // a pair of this test alone: the metrics are the process's
    const p = { ...prediction(0), pair };
    await timeOutStored(bus, store, svc, p, (t) => {
      now = t;
    });
    now = p.targetTs + 40 * 60_000;
    await bus.publish(topics.candles, [{ ...candle(5), pair }]);
    await revisionStored(store, p);
    const counted = Object.fromEntries(
      (await metrics.errorRecords.get()).values
        .filter((v) => v.labels.pair === pair)
        .map((v) => [`${v.labels.status} revision=${v.labels.revision}`, v.value]),
    );
    assert.deepEqual(counted, { 'unscorable revision=false': 1, 'scored revision=true': 1 });
    assert.match((await metrics.errorRecords.get()).help, /records published/);
    await svc.stop();
  });
});

describe('MonitorService: restarted after a time-out, its candle come meanwhile', () => {
  it('the stored time-out is revised from the re-read candles', async () => {
    let now = T0;
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const first = new MonitorService(bus, store, { clock: 'wall', now: () => now });
    await first.start();
    const p = prediction(0); // target: the close of candle(5)
    await bus.publish(
      topics.candles,
      Array.from({ length: 5 }, (_, i) => candle(i)),
    );
    await timeOutStored(bus, store, first, p, (t) => {
      now = t;
    });
    await first.stop();
    // While it is down, the candle stage catches up.
    await bus.publish(
      topics.candles,
      Array.from({ length: 10 }, (_, i) => candle(5 + i)),
    );
    now = p.targetTs + 60 * 60_000;
    const second = new MonitorService(bus, store, { clock: 'wall', now: () => now });
    await second.start();
    const stored = await revisionStored(store, p);
    assert.deepEqual([stored!.actualClose, stored!.latenessMs], [candle(5).close, 60 * 60_000]);
    assert.deepEqual([second.join.stats.lateScored, second.join.stats.unscorable], [1, 0]);
    await second.stop();
  });
});

describe('MonitorService: the candles commit', () => {
  it("each partition's offset a day behind its own newest candle, not behind another partition's", async () => {
    const bus = new InProcessBus();
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event' },
    );
    await svc.start();
    // BTC/USD (partition 1): two days of candles; ETH/USD (partition 3): its first hour.
    await bus.publish(
      topics.candles,
      Array.from({ length: 2 * 1440 }, (_, i) => candle(i)),
    );
    await bus.publish(
      topics.candles,
      Array.from({ length: 60 }, (_, i) => ({ ...candle(i), pair: 'ETH/USD' })),
    );
    await svc.caughtUp();
    const committed = (
      bus as unknown as { groups: Map<string, { committed: Map<number, number> }> }
    ).groups.get(`${topics.candles.name}\u0000monitor.candles`)!.committed;
    // BTC's newest windowEnd is candle(2879)'s; a day behind it is candle(1439)'s: the first kept.
    assert.equal(committed.get(1), 1439, 'BTC: from the first candle within a day of its newest');
    assert.equal(committed.get(3) ?? 0, 0, 'ETH: its whole hour kept (within a day of its own newest)');
    await svc.stop();
  });
});

describe('MonitorService: staleness alerts live, on what the monitor has not had the time to see', () => {
  it('a restart behind a day of candles, or a start before the first feature vector, raises neither no-candles nor features-stale; a real silence does', async () => {
    let now = T0 + 86_400_000;
    // A day of candles ending now, in the topic before the monitor starts (a restart: the candles are re-read from a
    // day behind), read 100 at a time.
    const bus = new InProcessBus({ maxBatch: 100 });
    await bus.publish(
      topics.candles,
      Array.from({ length: 1_440 }, (_, i) => candle(i)),
    );
    const engine = new AlertEngine(
      defaultRules().filter((r) => r.kind === 'no_candles' || r.kind === 'feature_staleness'),
      undefined,
      pino({ level: 'silent' }),
    );
    const sent: Notification[] = [];
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'wall', now: () => now, alerts: { engine } },
    );
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    await svc.caughtUp();
    svc.evaluateAlerts(true);
    assert.deepEqual(
      sent.map((n) => `${n.status} ${n.rule}`),
      [],
      'the candles are there (read behind), and no feature vector could have come yet',
    );
    // Then six minutes without a candle or a feature vector: both fire.
    now += 6 * 60_000;
    svc.evaluateAlerts(true);
    await svc.stop();
    assert.deepEqual(sent.map((n) => `${n.status} ${n.rule}`).sort(), [
      'firing features-stale',
      'firing no-candles',
    ]);
  });
});

describe('MonitorService: an alert firing when the monitor restarts', () => {
  it('resolves after the restart once its condition is clear (the API no longer lists it for ever)', async () => {
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    let now = T0 + 86_400_000;
    let championCreatedAt = now - 400 * 3_600_000;
    const monitor = () =>
      new MonitorService(bus, store, {
        clock: 'wall',
        now: () => now,
        alerts: {
          engine: new AlertEngine(
            [RuleSchema.parse({ name: 'champion-too-old', kind: 'champion_age', hours: 360 })],
            undefined,
            pino({ level: 'silent' }),
          ),
          championCreatedAt: () => championCreatedAt,
        },
        logger: pino({ level: 'silent' }),
      });
    const alerts = async () => (await bus.readTail(topics.alerts, 100)).map((r) => r.value);
    const first = monitor();
    await first.start();
    first.evaluateAlerts(true);
    await waitFor('the firing published', alerts, (a) => a.length === 1, { timeoutMs: 30_000, everyMs: 5 });
    await first.stop();
    // A new champion while the monitor was down: the condition is clear after the restart.
    championCreatedAt = now;
    const second = monitor();
    await second.start();
    second.evaluateAlerts(true);
    now += 6 * 60_000; // past resolveAfter (5 minutes)
    second.evaluateAlerts(true);
    await waitFor('a resolved published', alerts, (a) => a.some((n) => n.status === 'resolved'), {
      timeoutMs: 5_000,
      everyMs: 5,
    }).catch(() => undefined);
    await second.stop();
    const view = new AlertsView();
    for (const n of await alerts()) view.apply(n);
    assert.deepEqual(
      view.list().map((n) => `${n.status} ${n.rule}`),
      [],
      JSON.stringify((await alerts()).map((n) => `${n.status} ${n.rule} ${n.key}`)),
    );
    await bus.close();
  });
  it('resolves after the restart an alert whose firing is behind 1,000 notifications of other series', async () => {
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    let now = T0 + 86_400_000;
    let championCreatedAt = now - 400 * 3_600_000;
    const monitor = () =>
      new MonitorService(bus, store, {
        clock: 'wall',
        now: () => now,
        alerts: {
          engine: new AlertEngine(
            [RuleSchema.parse({ name: 'champion-too-old', kind: 'champion_age', hours: 360 })],
            undefined,
            pino({ level: 'silent' }),
          ),
          championCreatedAt: () => championCreatedAt,
        },
        logger: pino({ level: 'silent' }),
      });
    const alerts = async () => (await bus.readTail(topics.alerts, 100_000)).map((r) => r.value);
    const first = monitor();
    await first.start();
    first.evaluateAlerts(true);
    const [firing] = await waitFor('the firing published', alerts, (a) => a.length === 1, {
      timeoutMs: 30_000,
      everyMs: 5,
    });
    await first.stop();
    // Since then, 1,000 notifications of other series (an alert storm over many pairs, resolved since) on the topic's
    // one partition: the firing is no longer among its last 1,000 records.
    await bus.publish(
      topics.alerts,
      Array.from({ length: 1_000 }, (_, i) => ({
        ...firing!,
        rule: 'no-candles',
        key: `PAIR${i}/USD`,
        status: 'resolved' as const,
        at: firing!.at + 1 + i,
      })),
    );
    championCreatedAt = now;
    const second = monitor();
    await second.start();
    second.evaluateAlerts(true);
    now += 6 * 60_000; // past resolveAfter (5 minutes)
    second.evaluateAlerts(true);
    await waitFor(
      'a resolved of champion-too-old published',
      alerts,
      (a) => a.some((n) => n.status === 'resolved' && n.rule === 'champion-too-old'),
      { timeoutMs: 5_000, everyMs: 5 },
    ).catch(() => undefined);
    await second.stop();
    const view = new AlertsView();
    for (const n of await alerts()) view.apply(n);
    assert.deepEqual(
      view.list().map((n) => `${n.status} ${n.rule}`),
      [],
      'nothing left firing',
    );
    await bus.close();
  });
  it('an alert of a rule no longer configured after the restart is resolved at once', async () => {
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const now = T0 + 86_400_000;
    const monitor = (rules: RuleInput[]) =>
      new MonitorService(bus, store, {
        clock: 'wall',
        now: () => now,
        alerts: {
          engine: new AlertEngine(
            rules.map((r) => RuleSchema.parse(r)),
            undefined,
            pino({ level: 'silent' }),
          ),
          championCreatedAt: () => now - 400 * 3_600_000,
        },
        logger: pino({ level: 'silent' }),
      });
    const alerts = async () => (await bus.readTail(topics.alerts, 100)).map((r) => r.value);
    const first = monitor([{ name: 'champion-too-old', kind: 'champion_age', hours: 360 }]);
    await first.start();
    first.evaluateAlerts(true);
    await waitFor('the firing published', alerts, (a) => a.length === 1, { timeoutMs: 30_000, everyMs: 5 });
    await first.stop();
    // Restarted with a rules file that no longer has it (renamed, or removed).
    const second = monitor([{ name: 'champion-stale', kind: 'champion_age', hours: 720 }]);
    await second.start();
    await waitFor('a resolved published', alerts, (a) => a.some((n) => n.status === 'resolved'), {
      timeoutMs: 5_000,
      everyMs: 5,
    }).catch(() => undefined);
    await second.stop();
    const view = new AlertsView();
    for (const n of await alerts()) view.apply(n);
    assert.deepEqual(
      view.list().map((n) => `${n.status} ${n.rule}`),
      [],
    );
    await bus.close();
  });
});

describe('MonitorService: a verdict its topic refuses', () => {
  it('is dead-lettered; the verdicts beside it and after it are stored, and the predictions commit moves on', async () => {
    // Candles their schema takes (positive, finite) but absurd: a close of 1e-308 makes the percent error of a
    // prediction of about 105 infinite, which predictions.errors refuses. Prediction 0 waits for such a candle (5),
    // prediction 2 comes after one (7); 1 and 3 have sound candles.
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const svc = new MonitorService(bus, store, { clock: 'event', logger: pino({ level: 'silent' }) });
    await svc.start();
    await bus.publish(topics.predictions, [prediction(0), prediction(1)]);
    await waitFor(
      'both waiting',
      () => svc.join.pendingCount(),
      (n) => n === 2,
      { timeoutMs: 10_000, everyMs: 5 },
    );
    await bus.publish(
      topics.candles,
      Array.from({ length: 12 }, (_, i) =>
        i === 5 || i === 7 ? { ...candle(i), low: 1e-308, close: 1e-308 } : candle(i),
      ),
    );
    await bus.publish(topics.predictions, [prediction(2), prediction(3)]);
    const stored = await waitFor(
      'the sound predictions’ verdicts stored',
      () => [1, 3].map((i) => store.rows.get(errorKey(prediction(i)))?.status ?? 'none').join(' '),
      (s) => s === 'scored scored',
      { timeoutMs: 10_000, everyMs: 5 },
    ).catch((err: Error) => err.message);
    // Offsets are committed with the next batch read: past all four then (a fifth, sound, waits for its write).
    const committed = () =>
      (bus as unknown as { groups: Map<string, { committed: Map<number, number> }> }).groups
        .get(`${topics.predictions.name}\u0000monitor.predictions`)!
        .committed.values()
        .next().value; // one pair: one partition
    await bus.publish(topics.predictions, [prediction(4)]);
    const commit = await waitFor('the commit past the four', committed, (n) => n === 4, {
      timeoutMs: 10_000,
      everyMs: 5,
    }).catch((err: Error) => err.message);
    const letters = (await bus.readTail(topics.dlq, 100)).map((r) => r.value);
    await svc.stop();
    await bus.close();
    assert.equal(stored, 'scored scored');
    assert.equal(commit, 4, 'nothing left waiting for a verdict that cannot be stored');
    assert.equal(store.rows.has(errorKey(prediction(0))) || store.rows.has(errorKey(prediction(2))), false);
    assert.deepEqual(
      letters.map((l) => `${l.service} ${l.origin} ${l.kind}`),
      ['monitor predictions.errors invalid', 'monitor predictions.errors invalid'],
    );
    assert.match(letters[0]!.reason, /pctError/);
  });
});

describe('MonitorService: alerts on the event clock when a pair stops', () => {
  it("a pair whose recording ends does not hold the other pairs' alerts back for the rest of the replay", async () => {
    const bus = new InProcessBus();
    const engine = new AlertEngine(
      [RuleSchema.parse({ name: 'worse', kind: 'skill_below', window: '1h', minCount: 10, for: '15m' })],
      undefined,
      pino({ level: 'silent' }),
    );
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event', alerts: { engine }, logger: pino({ level: 'silent' }) },
    );
    const sent: Notification[] = [];
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    const eth = <T extends { pair: string }>(x: T): T => ({ ...x, pair: 'ETH/USD' });
    // ETH's recording ends after 70 minutes (its predictions exact, those of its last 5 minutes timed out); BTC's
    // goes on for four hours, its predictions exact for two hours, then each 1 below the close (6 off where
    // persistence is 5: the skill falls below 0).
    const exact = (i: number) => ({ ...prediction(i), predictedClose: 105 + i });
    await bus.publish(topics.candles, [
      ...Array.from({ length: 70 }, (_, i) => eth(candle(i))),
      ...Array.from({ length: 250 }, (_, i) => candle(i)),
    ]);
    await bus.publish(
      topics.predictions,
      Array.from({ length: 70 }, (_, i) => eth(exact(i))),
    );
    await svc.caughtUp();
    await waitFor(
      'ETH’s last predictions timed out',
      () => svc.join.pendingCount(),
      (n) => n === 0,
      {
        timeoutMs: 30_000,
        everyMs: 20,
      },
    );
    for (let h = 0; h < 4; h++) {
      await bus.publish(
        topics.predictions,
        Array.from({ length: 60 }, (_, k) => {
          const i = h * 60 + k;
          return i < 120 ? exact(i) : { ...prediction(i), predictedClose: 99 + i };
        }),
      );
      await svc.caughtUp();
    }
    await svc.stop();
    assert.deepEqual(
      sent.map((n) => `${n.status} ${n.key}`),
      ['firing BTC/USD'],
    );
  });
});

describe('MonitorService: the rolling-quality gauges on the event clock', () => {
  it('end at the newest verdict’s target time (as /v1/quality does), not at the candles read ahead of it', async () => {
    const bus = new InProcessBus();
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event', logger: pino({ level: 'silent' }) },
    );
    await svc.start();
    // A replay's candles run ahead of its predictions: four hours of candles, half an hour of verdicts.
    await bus.publish(
      topics.candles,
      Array.from({ length: 240 }, (_, i) => candle(i)),
    );
    await bus.publish(
      topics.predictions,
      Array.from({ length: 30 }, (_, i) => prediction(i)),
    );
    await svc.caughtUp();
    const text = await metricsText();
    await svc.stop();
    const count = text.match(/^cryptocast_quality_count\{pair="BTC\/USD",window="1h"\} (\S+)$/m)?.[1];
    assert.equal(count, '30', 'the verdicts of the last hour');
  });
});

describe('MonitorService: the dead-letters rule on the event clock', () => {
  it('one burst of dead letters does not fire a rule that must hold for 2 minutes (it would not live)', async () => {
    const bus = new InProcessBus();
    const engine = new AlertEngine(
      [RuleSchema.parse({ name: 'dead-letters', kind: 'dead_letters', perMinute: 10, for: '2m' })],
      undefined,
      pino({ level: 'silent' }),
    );
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      { clock: 'event', alerts: { engine }, logger: pino({ level: 'silent' }) },
    );
    const sent: Notification[] = [];
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    // Eleven dead letters at once (a burst: one wall second), then a replay's hour of verdicts in two batches.
    await bus.publish(
      topics.dlq,
      Array.from({ length: 11 }, (_, i) =>
        deadLetter({ service: 'candles', origin: 'trades', kind: 'late', reason: 'late trade', payload: i }),
      ),
    );
    await bus.publish(
      topics.predictions,
      Array.from({ length: 60 }, (_, i) => prediction(i)),
    );
    await svc.caughtUp();
    await bus.publish(
      topics.candles,
      Array.from({ length: 30 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    await bus.publish(
      topics.candles,
      Array.from({ length: 40 }, (_, i) => candle(30 + i)),
    );
    await svc.caughtUp();
    await svc.stop();
    assert.deepEqual(
      sent.map((n) => `${n.status} ${n.rule}`),
      [],
    );
  });
});

describe('MonitorService: the alerts topic briefly away', () => {
  it('a notification whose publish fails is published again, in order (the API learns of it)', async () => {
    const { bus, inner } = busFailingOnce(topics.alerts.name);
    const now = T0 + 86_400_000;
    let championCreatedAt = now - 400 * 3_600_000;
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      {
        clock: 'wall',
        now: () => now,
        alerts: {
          engine: new AlertEngine(
            [
              RuleSchema.parse({
                name: 'champion-too-old',
                kind: 'champion_age',
                hours: 360,
                resolveAfter: 0,
              }),
            ],
            undefined,
            pino({ level: 'silent' }),
          ),
          championCreatedAt: () => championCreatedAt,
        },
        logger: pino({ level: 'silent' }),
      },
    );
    await svc.start();
    svc.evaluateAlerts(true); // firing: its publish fails
    championCreatedAt = now;
    svc.evaluateAlerts(true); // resolved
    const announced = await waitFor(
      'both announced',
      async () => (await inner.readTail(topics.alerts, 100)).map((r) => r.value.status),
      (a) => a.length === 2,
      { timeoutMs: 10_000, everyMs: 10 },
    ).catch((err: Error) => err.message);
    await svc.stop();
    await inner.close();
    assert.deepEqual(announced, ['firing', 'resolved']);
  });
});

describe('MonitorService: dead letters on the event clock before any verdict', () => {
  it('keeps only the last wall minute of them, though no alert evaluation has run yet', async () => {
    const bus = new InProcessBus();
    let now = T0;
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      {
        clock: 'event',
        now: () => now,
        alerts: {
          engine: new AlertEngine(
            [RuleSchema.parse({ name: 'dead-letters', kind: 'dead_letters', perMinute: 10, for: '2m' })],
            undefined,
            pino({ level: 'silent' }),
          ),
        },
        logger: pino({ level: 'silent' }),
      },
    );
    await svc.start();
    // Ten minutes of a source dead-lettering 100 records every 30 s; no prediction yet (the event clock has not begun).
    for (let k = 0; k < 20; k++) {
      now = T0 + k * 30_000;
      await bus.publish(
        topics.dlq,
        Array.from({ length: 100 }, (_, i) =>
          deadLetter({
            service: 'candles',
            origin: 'trades',
            kind: 'invalid',
            reason: 'bad',
            payload: i,
            now,
          }),
        ),
      );
      await svc.caughtUp();
    }
    const kept = (svc as unknown as { deadLetterTimes: number[] }).deadLetterTimes.length;
    await svc.stop();
    await bus.close();
    assert.ok(kept <= 200, `${kept} dead-letter times kept of 2,000 (the last wall minute holds 200)`);
  });
});

describe('MonitorService: a verdict its topic refuses, the broker away for a moment', () => {
  it('is dead-lettered all the same: the dead letter is published again until the broker takes it', async () => {
    const { bus, inner } = busFailingOnce(topics.dlq.name);
    const svc = new MonitorService(
      bus,
      memoryStore(() => false),
      {
        clock: 'event',
        logger: pino({ level: 'silent' }),
      },
    );
    await svc.start();
    await bus.publish(topics.predictions, [prediction(0)]);
    await waitFor(
      'waiting',
      () => svc.join.pendingCount(),
      (n) => n === 1,
      { timeoutMs: 10_000, everyMs: 5 },
    );
    // An absurd close (1e-308) at the prediction's target: a percent error predictions.errors refuses.
    await bus.publish(
      topics.candles,
      Array.from({ length: 8 }, (_, i) =>
        i === 5 ? { ...candle(i), low: 1e-308, close: 1e-308 } : candle(i),
      ),
    );
    const letters = await waitFor(
      'the dead letter published',
      async () => (await inner.readTail(topics.dlq, 100)).map((r) => `${r.value.origin} ${r.value.kind}`),
      (l) => l.length > 0,
      { timeoutMs: 10_000, everyMs: 10 },
    ).catch((err: Error) => err.message);
    await svc.stop();
    await inner.close();
    assert.deepEqual(
      letters,
      ['predictions.errors invalid'],
      'the verdict is neither stored nor dead-lettered',
    );
  });
});

describe('MonitorService: predictions read more than a day behind their candles', () => {
  it('are scored from the candles the monitor stored, not written off target_before_retention', async () => {
    // A replay whose candles are all read before its first prediction (cryptocast run --replay 2022-05 --no-news
    // read its 89,280 candles before the predictor had made one): three days of candles, then the first day's
    // predictions.
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const candles = await openCandlesTable(`duckdb:${join(scratchDir('h52-monitor-candles-'), 'c.duckdb')}`);
    const svc = new MonitorService(bus, store, {
      clock: 'event',
      candles,
      logger: pino({ level: 'silent' }),
    });
    await svc.start();
    await bus.publish(
      topics.candles,
      Array.from({ length: 3 * 1440 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 30 }, (_, i) => prediction(i)),
    );
    await svc.caughtUp();
    await svc.stop();
    await bus.close();
    await candles.close();
    // Prediction i targets the candle i + 5, whose close is 100 + i + 5.
    assert.deepEqual(
      Array.from({ length: 30 }, (_, i) => {
        const e = store.rows.get(errorKey(prediction(i)));
        return `${e?.status} ${e?.reason ?? e?.actualClose}`;
      }),
      Array.from({ length: 30 }, (_, i) => `scored ${105 + i}`),
    );
  });
});

describe('MonitorService (--late-policy revise): predictions read more than a day behind their revised candles', () => {
  it('are scored against the first emission of their target minute, as when read in time, not its latest revision', async () => {
    // As above, but the target minutes of the first predictions were revised (a late trade, a new close) after their
    // first emission: the join judges by the first emission (revisions are ignored, as the features ignore them), and
    // so must the close read back from the store, which keeps the latest revision in its candles table.
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const file = `duckdb:${join(scratchDir('h94-monitor-candles-'), 'c.duckdb')}`;
    const candles = await openCandlesTable(file);
    const firstEmissions = await openCandleFirstEmissionsTable(file);
    const svc = new MonitorService(bus, store, {
      clock: 'event',
      candles,
      candleFirstEmissions: firstEmissions,
      logger: pino({ level: 'silent' }),
    });
    await svc.start();
    const revised = (i: number): Candle => ({ ...candle(i), low: 50 + i, close: 50 + i, revision: 1 });
    await bus.publish(
      topics.candles,
      Array.from({ length: 3 * 1440 }, (_, i) =>
        i >= 5 && i < 10 ? [candle(i), revised(i)] : [candle(i)],
      ).flat(),
    );
    await svc.caughtUp();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 5 }, (_, i) => prediction(i)),
    );
    await svc.caughtUp();
    await svc.stop();
    await bus.close();
    // The store keeps both: the latest revision in its candles, the first emission beside it.
    assert.equal(
      (await candles.range('BTC/USD', candle(5).windowEnd, candle(5).windowEnd + 1))[0]?.close,
      55,
    );
    await candles.close();
    await firstEmissions.close();
    // Prediction i targets the candle i + 5, first emitted with the close 100 + i + 5 (revised to 55 + i).
    assert.deepEqual(
      Array.from({ length: 5 }, (_, i) => {
        const e = store.rows.get(errorKey(prediction(i)));
        return `${e?.status} ${e?.reason ?? e?.actualClose}`;
      }),
      Array.from({ length: 5 }, (_, i) => `scored ${105 + i}`),
    );
  });
});

describe('MonitorService: candles read while closes are read back from the store', () => {
  it('do not drop the closes of the batch waiting for them (the batch in hand counts as read)', async () => {
    const bus = new InProcessBus();
    const store = memoryStore(() => false);
    const candles = await openCandlesTable(`duckdb:${join(scratchDir('h52-monitor-candles-'), 'c.duckdb')}`);
    // The store's read is held until released: meanwhile the candles move on by ten minutes.
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let reads = 0;
    const range = candles.range.bind(candles);
    candles.range = async (...a) => {
      reads++;
      await held;
      return range(...a);
    };
    const svc = new MonitorService(bus, store, {
      clock: 'event',
      candles,
      logger: pino({ level: 'silent' }),
    });
    await svc.start();
    const day = 1440;
    await bus.publish(
      topics.candles,
      Array.from({ length: 3 * day }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    // Prediction 0's close has left memory (read back); prediction 2·day − 3's (candle 2·day + 2) is just within the day.
    const near = 2 * day - 3;
    await bus.publish(topics.predictions, [prediction(0), prediction(near)]);
    await waitFor(
      'the read-back under way',
      () => reads,
      (n) => n > 0,
      { timeoutMs: 10_000, everyMs: 5 },
    );
    await bus.publish(
      topics.candles,
      Array.from({ length: 10 }, (_, i) => candle(3 * day + i)),
    );
    await waitFor(
      'the candles read',
      () => svc.join.stats.candles,
      (n) => n === 3 * day + 10,
      {
        timeoutMs: 10_000,
        everyMs: 5,
      },
    );
    release();
    await svc.caughtUp();
    await svc.stop();
    await bus.close();
    await candles.close();
    assert.deepEqual(
      [0, near].map((i) => {
        const e = store.rows.get(errorKey(prediction(i)));
        return `${e?.status} ${e?.reason ?? e?.actualClose}`;
      }),
      ['scored 105', `scored ${105 + near}`],
    );
  });
});

describe('MonitorService: a replay over a store that already holds verdicts (`run --replay` run again)', () => {
  // Predictions 1 below the close from minute 120 on: each misses by 6 where persistence misses by 5, so the skill
  // over the hour turns negative there and the rule fires about 25 minutes later (10 verdicts, then 15 minutes).
  const BAD_FROM = 120;
  const made = (i: number): Prediction =>
    i >= BAD_FROM ? { ...prediction(i), predictedClose: 99 + i } : prediction(i);
  const verdict = (i: number) => scorePrediction(made(i), candle(i + 5).close, made(i).targetTs);
  const rule = () =>
    new AlertEngine(
      [RuleSchema.parse({ name: 'worse', kind: 'skill_below', window: '1h', minCount: 10, for: '15m' })],
      undefined,
      pino({ level: 'silent' }),
    );

  /** Replays 240 minutes of candles and predictions on the event clock over `store`: the firings. */
  async function replay(store: ReturnType<typeof memoryStore>): Promise<Notification[]> {
    const bus = new InProcessBus();
    const engine = rule();
    const sent: Notification[] = [];
    const svc = new MonitorService(bus, store, {
      clock: 'event',
      alerts: { engine },
      logger: pino({ level: 'silent' }),
    });
    engine.onNotification = (n) => sent.push(n);
    await svc.start();
    await bus.publish(
      topics.candles,
      Array.from({ length: 250 }, (_, i) => candle(i)),
    );
    for (let i = 0; i < 240; i += 20)
      await bus.publish(
        topics.predictions,
        Array.from({ length: 20 }, (_, k) => made(i + k)),
      );
    await svc.caughtUp();
    await svc.stop();
    await bus.close();
    return sent.filter((n) => n.status === 'firing');
  }

  it('fires as on an empty store, whether the stored verdicts are of a later month or of this very replay', async () => {
    const fresh = await replay(memoryStore(() => false));
    assert.equal(fresh.length, 1, 'on an empty store the rule fires once');
    const firedAt = fresh[0]!.at;
    assert.ok(firedAt > T0 + BAD_FROM * 60_000, new Date(firedAt).toISOString());

    // The store of an earlier run of a later month (its newest verdict 30 days on): this replay's verdicts are older
    // than the rolling quality's 7 days before it, and were dropped from it as soon as they were added.
    const laterMonth = memoryStore(() => false);
    const later = { ...verdict(0), windowEnd: verdict(0).windowEnd + 30 * 86_400_000 };
    laterMonth.rows.set(errorKey(later), { ...later, targetTs: later.windowEnd + 300_000 });
    // The same firing, at the same replayed time within an evaluation step or two (batches may fall differently).
    const sameFiring = (fired: Notification[], what: string) => {
      assert.equal(fired.length, 1, `${what}: ${JSON.stringify(fired)}`);
      assert.ok(
        Math.abs(fired[0]!.at - firedAt) <= 60_000,
        `${what}: ${new Date(fired[0]!.at).toISOString()}`,
      );
    };
    sameFiring(await replay(laterMonth), 'over the store of a later month');

    // The store of an earlier run of this same replay, from minute 100 on: the predictions re-read there are not
    // judged again, and the alerts' clock, moved by verdicts only, stopped where they began.
    const sameReplay = memoryStore(() => false);
    for (let i = 100; i < 240; i++) sameReplay.rows.set(errorKey(verdict(i)), verdict(i));
    sameFiring(await replay(sameReplay), 'over the store of this replay');
  });
});
