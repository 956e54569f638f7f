import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError } from '@platformatic/kafka';
import pino from 'pino';
import { type CryptocastError, ERR, fail } from '../../../src/core/errors.ts';
import { markStarted, readiness } from '../../../src/core/readiness.ts';
import { KafkaBus } from '../../../src/runtime/kafka/bus.ts';
import { RefusalGrace } from '../../../src/runtime/kafka/refusal-grace.ts';
import { KafkaSubscription } from '../../../src/runtime/kafka/subscription.ts';
import { PartitionCursor } from '../../../src/runtime/partition-cursor.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { T0, trade } from '../../support/factories.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * A running Kafka client refused (SASL, an ACL, TLS) ends the process only after CRYPTOCAST_KAFKA_REFUSED_FOR_MS of
 * refusals with no success between, whatever path met them (src/runtime/kafka/refusal-grace.ts, `KafkaBus.refused`):
 * the grace on an injected clock, then every path of the bus — publish, a broker wait (admin calls, metadata, a
 * subscription's join), the consumer lag, a subscription's rejoin, its fetch, its membership lost in the background —
 * with the client's calls faked (no broker). The real broker's case: test/integration/kafka-sasl-ssl.test.ts.
 */
const GRACE_MS = 60_000;
const quiet = pino({ level: 'silent' });
const refusal = (): CryptocastError =>
  fail(ERR.BUS_AUTH, 'Kafka authentication failed for user "svc" with mechanism SCRAM-SHA-512 at b-1:9096');
/** The client's failure as it nests a refused login (see kafka-refusals.test.ts). */
const loginRefused = (): Error =>
  new MultipleErrors('Cannot connect to any broker.', [
    new NetworkError('Connection to b-1:9096 failed.', {
      cause: new AuthenticationError('SASL authentication failed.', {
        cause: new MultipleErrors('Received response with error while executing API SaslAuthenticate(v2)', [
          new ProtocolError('SASL_AUTHENTICATION_FAILED', 'invalid credentials'),
        ]),
      }),
    }),
  ]);

describe('RefusalGrace: refusals for good only after the grace with no success between (injected clock)', () => {
  it('first, within, then for good once the grace has passed since the first refusal', () => {
    let now = 1_000;
    const grace = new RefusalGrace(GRACE_MS, () => now);
    assert.equal(grace.refused('publish', refusal()), 'first');
    now += GRACE_MS - 1;
    assert.equal(grace.refused('publish', refusal()), 'within');
    assert.equal(grace.forGood(), undefined);
    now += 1;
    const last = refusal();
    assert.equal(grace.refused('publish', last), 'for-good');
    assert.equal(grace.forGood(), last);
    // The process is ending: every path's refusal is for good from then on.
    assert.equal(grace.refused('broker', refusal()), 'for-good');
  });

  it('a success of the path clears its refusal: the grace starts again at its next one', () => {
    let now = 0;
    const grace = new RefusalGrace(GRACE_MS, () => now);
    grace.refused('publish', refusal());
    now += GRACE_MS - 1;
    assert.equal(grace.accepted('publish'), true);
    assert.equal(grace.refusal(), undefined);
    now += 10;
    assert.equal(grace.refused('publish', refusal()), 'first');
    now += GRACE_MS - 1;
    assert.equal(grace.refused('publish', refusal()), 'within');
    assert.equal(grace.accepted('never-refused'), false);
  });

  it("per path: another path's success does not clear a refusal (old connections served, new ones refused)", () => {
    let now = 0;
    const grace = new RefusalGrace(GRACE_MS, () => now);
    grace.refused('publish', refusal());
    now += GRACE_MS / 2;
    grace.accepted('subscription g/candles');
    now += GRACE_MS / 2;
    assert.equal(grace.refused('publish', refusal()), 'for-good');
  });

  it('a grace of 0: for good at the first refusal (the former behaviour, as a setting)', () => {
    const grace = new RefusalGrace(0, () => 5);
    assert.equal(grace.refused('publish', refusal()), 'for-good');
  });
});

/** A bus on a fake clock whose clients are faked per test; `ended` lists what `onRefused` was called with. */
function fakeBus() {
  const clock = { now: 1_000_000 };
  const ended: CryptocastError[] = [];
  const bus = new KafkaBus({
    brokers: ['b-1:9096'],
    logger: quiet,
    security: { tls: {}, sasl: { mechanism: 'SCRAM-SHA-512', username: 'svc', password: 'Sup3r-Secret-Pw' } },
    refusedForMs: GRACE_MS,
    now: () => clock.now,
    onRefused: (err) => ended.push(err),
  });
  const inner = bus as unknown as {
    producer: unknown;
    admin: unknown;
    metaClient: unknown;
    ensured: Set<string>;
  };
  return { bus, clock, ended, inner };
}

/** A fake admin: `listTopics` answers as `answer` says, call by call. */
function fakeAdmin(answer: (call: number) => string[] | Error) {
  let calls = 0;
  return {
    calls: () => calls,
    admin: {
      listTopics: async () => {
        const a = answer(++calls);
        if (a instanceof Error) throw a;
        return a;
      },
      createTopics: async () => {},
      close: async () => {},
    },
  };
}

/** A fake metadata client: every topic asked for exists with its declared partitions, each with a leader. */
function fakeMeta(bus: KafkaBus) {
  return {
    metadata: async ({ topics: names }: { topics: string[] }) => ({
      brokers: new Map([[1, {}]]),
      topics: new Map(
        names.map((n) => {
          const t = Object.values(topics).find((x) => bus.name(x) === n)!;
          const partitions = Array.from({ length: t.partitions }, () => ({ leader: 1 }));
          return [n, { partitionsCount: t.partitions, partitions }];
        }),
      ),
    }),
    close: async () => {},
  };
}

describe('KafkaBus: every path hands a running client refusal to one place, which ends only after the grace', () => {
  it('before anything was served, a refusal is a setting to fix: thrown at once, nothing waited for', async () => {
    const { bus, ended, inner } = fakeBus();
    const { admin, calls } = fakeAdmin(() => loginRefused());
    inner.admin = admin;
    await assert.rejects(
      bus.ensureTopics([topics.dlq]),
      (err: CryptocastError) => err.code === 'CC_ERR_BUS_AUTH',
    );
    assert.equal(calls(), 1, 'not retried');
    assert.equal(ended.length, 0, 'thrown to the caller (the binary ends with it), not through onRefused');
    await bus.close();
  });

  it('publish: refused within the grace it throws (its callers retry) and the process goes on; past it, ended', async () => {
    const { bus, clock, ended, inner } = fakeBus();
    let refuse = false;
    let sent = 0;
    inner.producer = {
      send: async () => {
        if (refuse) throw loginRefused();
        sent++;
      },
      close: async () => {},
    };
    inner.ensured.add(topics.trades.name);
    const value = [trade({ ts: T0, price: 100 })];
    await bus.publish(topics.trades, value);
    refuse = true;
    await assert.rejects(
      bus.publish(topics.trades, value),
      (err: CryptocastError) => err.code === 'CC_ERR_BUS_AUTH',
    );
    markStarted();
    assert.match(readiness().reason ?? '', /kafka: Kafka authentication failed/, '/ready says it');
    clock.now += GRACE_MS - 1;
    await assert.rejects(bus.publish(topics.trades, value));
    assert.equal(ended.length, 0, 'within the grace');
    // Cleared within the grace: served again, and /ready with it.
    refuse = false;
    await bus.publish(topics.trades, value);
    assert.equal(sent, 2);
    assert.equal(readiness().ready, true);
    // A refusal that lasts: the grace counts from its first.
    refuse = true;
    await assert.rejects(bus.publish(topics.trades, value));
    clock.now += GRACE_MS;
    await assert.rejects(bus.publish(topics.trades, value));
    assert.equal(ended.length, 1);
    assert.equal(ended[0]?.code, 'CC_ERR_BUS_AUTH');
    await bus.close();
  });

  // h128's review: a publish reported Kafka up, then `accepted` reported the subscription's refusal again: two log
  // lines per publish ("available again" / "unavailable"), dependency_up 1→0 each time, for the whole grace.
  it('publishes served while another path is refused: Kafka stays down, said once, no line per publish', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const bus = new KafkaBus({ brokers: ['b-1:9096'], logger: log, refusedForMs: GRACE_MS });
    const inner = bus as unknown as { producer: unknown; ensured: Set<string> };
    inner.producer = { send: async () => {}, close: async () => {} };
    inner.ensured.add(topics.trades.name);
    await bus.publish(topics.trades, [trade({ ts: T0, price: 100 })]);
    bus.refused('subscription g/candles', refusal());
    const before = lines.length;
    for (let i = 0; i < 5; i++) await bus.publish(topics.trades, [trade({ ts: T0 + i, price: 100 })]);
    assert.deepEqual(
      lines.slice(before).map((l) => l.msg),
      [],
    );
    markStarted();
    assert.match(readiness().reason ?? '', /kafka: Kafka authentication failed/, '/ready still says it');
    await bus.close();
  });

  it('a broker wait (admin calls: topics, reads, the join): waited for within the grace, and its end once past it', async () => {
    const { bus, clock, ended, inner } = fakeBus();
    inner.metaClient = fakeMeta(bus);
    // Served once: the topics were listed and made.
    inner.admin = fakeAdmin(() => []).admin;
    await bus.ensureTopics([topics.dlq]);
    // Refused twice, then served: the wait goes on and succeeds, the process with it.
    const clears = fakeAdmin((n) => (n <= 2 ? loginRefused() : []));
    inner.admin = clears.admin;
    await bus.ensureTopics([topics.candles]);
    assert.equal(clears.calls(), 3, 'retried past the refusals');
    assert.equal(ended.length, 0);
    // Refused for good: waited for through the grace, then ended with the refusal.
    const lasting = fakeAdmin((n) => {
      if (n === 2) clock.now += GRACE_MS; // the grace passes between two attempts
      return loginRefused();
    });
    inner.admin = lasting.admin;
    await assert.rejects(
      bus.ensureTopics([topics.features]),
      (err: CryptocastError) => err.code === 'CC_ERR_BUS_AUTH',
    );
    assert.equal(lasting.calls(), 2, 'waited for within the grace, given up at the refusal past it');
    assert.equal(ended.length, 1);
    await bus.close();
  });

  it('the consumer lag: a path of its own, asked again by its callers', async () => {
    const { bus, clock, ended, inner } = fakeBus();
    let refuse = true;
    inner.admin = {
      listConsumerGroupOffsets: async () => {
        if (refuse) throw loginRefused();
        return [];
      },
      close: async () => {},
    };
    inner.metaClient = {
      listOffsets: async () => new Map(),
      close: async () => {},
    };
    bus.accepted('broker'); // served once
    await assert.rejects(bus.groupLag(topics.trades, 'g'));
    clock.now += GRACE_MS / 2;
    refuse = false;
    assert.equal(await bus.groupLag(topics.trades, 'g'), undefined);
    refuse = true;
    clock.now += GRACE_MS / 2;
    await assert.rejects(bus.groupLag(topics.trades, 'g'));
    assert.equal(ended.length, 0, 'the success between cleared the first refusal');
    clock.now += GRACE_MS;
    await assert.rejects(bus.groupLag(topics.trades, 'g'));
    assert.equal(ended.length, 1);
    await bus.close();
  });
});

describe('KafkaSubscription: its loop hands refusals to the bus and retries', () => {
  /** A subscription whose member and fetcher are faked; its loop run by hand. */
  function fakeSubscription(bus: KafkaBus) {
    const sub = new KafkaSubscription(bus, {
      topic: topics.trades,
      group: 'g',
      service: 'test',
      handle: () => undefined,
    });
    const inner = sub as unknown as {
      member: {
        joinGroup: () => Promise<void>;
        emit: (event: string, err: Error) => boolean;
        close: () => Promise<void>;
      };
      fetcher: { metadata: () => Promise<never>; close: () => Promise<void> };
      partitions: Map<number, PartitionCursor>;
      rejoinNeeded: boolean;
      joined: boolean;
      loop: Promise<void> | undefined;
      run: () => Promise<void>;
    };
    inner.member.close = async () => {};
    inner.fetcher.close = async () => {};
    return { sub, inner };
  }

  it('a rejoin refused (its membership lost in the background, then joinGroup): retried, ended only after the grace', async () => {
    const { bus, clock, ended } = fakeBus();
    bus.accepted('broker');
    const { sub, inner } = fakeSubscription(bus);
    let joins = 0;
    inner.member.joinGroup = async () => {
      joins++;
      throw loginRefused();
    };
    // The client's background rejoin failed: said, and the loop rejoins.
    inner.member.emit('error', loginRefused());
    assert.equal(inner.rejoinNeeded, true, 'the loop rejoins after a refusal too');
    inner.joined = true;
    inner.loop = inner.run();
    await waitFor(
      'two rejoins refused',
      () => joins,
      (n) => n >= 2,
      { timeoutMs: 30_000, everyMs: 20 },
    );
    assert.equal(ended.length, 0, 'within the grace');
    clock.now += GRACE_MS;
    await waitFor(
      'the end past the grace',
      () => ended.length,
      (n) => n === 1,
      { timeoutMs: 30_000, everyMs: 20 },
    );
    await sub.stop();
    await bus.close();
  });

  it('a fetch refused: retried with back-off, ended only after the grace', async () => {
    const { bus, clock, ended } = fakeBus();
    bus.accepted('broker');
    const { sub, inner } = fakeSubscription(bus);
    let fetches = 0;
    inner.fetcher.metadata = async () => {
      fetches++;
      throw loginRefused();
    };
    inner.partitions.set(0, new PartitionCursor(0n, -1n));
    inner.joined = true;
    inner.loop = inner.run();
    await waitFor(
      'two fetches refused',
      () => fetches,
      (n) => n >= 2,
      { timeoutMs: 30_000, everyMs: 20 },
    );
    assert.equal(ended.length, 0);
    clock.now += GRACE_MS;
    await waitFor(
      'the end past the grace',
      () => ended.length,
      (n) => n === 1,
      { timeoutMs: 30_000, everyMs: 20 },
    );
    await sub.stop();
    await bus.close();
  });
});
