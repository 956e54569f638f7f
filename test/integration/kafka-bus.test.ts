import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, ConfigResourceTypes, Producer, stringSerializers } from '@platformatic/kafka';
import { z } from 'zod';
import { type Batch, type Delivered, partitionFor } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { defineTopic, type Topic } from '../../src/runtime/topic.ts';
import { DLQ_MAX_PAYLOAD_CHARS } from '../../src/schemas/dlq.ts';
import { topics } from '../../src/schemas/topics.ts';
import { busContract } from '../support/bus-contract.ts';
import { waitFor } from '../support/wait.ts';

/**
 * KafkaBus against a real Apache Kafka broker (scripts/kafka.sh, started here if it is not running, and left
 * running for the other test files). Every test works in its own namespace (a topic prefix, which prefixes
 * groups too), so that reruns and concurrent test files never see each other's records.
 *
 * CRYPTOCAST_TEST_KAFKA picks the broker (default kafka://127.0.0.1:9092); its port is passed to the script.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const URL = process.env.CRYPTOCAST_TEST_KAFKA ?? 'kafka://127.0.0.1:9092';
const BROKER = URL.replace(/^kafka:\/\//, '').split(',')[0]!;

const Msg = z.object({ v: z.literal(1), pair: z.string().min(1), n: z.number().int() });
type Msg = z.infer<typeof Msg>;
const numbers = defineTopic<Msg>({
  name: 'numbers',
  description: 'test numbers',
  schema: Msg,
  key: (m) => m.pair,
  partitions: 4,
});
const single = defineTopic<Msg>({ ...numbers, name: 'single', partitions: 1 });
const PAIRS = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD', 'ADA/USD', 'DOT/USD', 'LTC/EUR', 'BTC/EUR'];
const msgs = (count: number, from = 0, pairs = PAIRS): Msg[] =>
  Array.from({ length: count }, (_, i) => ({ v: 1, pair: pairs[(from + i) % pairs.length]!, n: from + i }));

/** Polls until `cond` holds, or fails naming `what` after `ms`. */
async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('KafkaBus on a real Kafka broker', () => {
  const buses: KafkaBus[] = [];
  let admin: Admin;
  let raw: Producer<string, string, string, string>;

  before(() => {
    // Idempotent: returns at once if the broker already serves.
    execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), 'start'], {
      env: { ...process.env, KAFKA_PORT: BROKER.split(':')[1] ?? '9092' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    admin = new Admin({ clientId: 'kafka-bus-test-admin', bootstrapBrokers: [BROKER] });
    // A producer that writes whatever it is given: the misbehaving producer KafkaBus must survive.
    raw = new Producer({
      clientId: 'kafka-bus-test-raw',
      bootstrapBrokers: [BROKER],
      serializers: stringSerializers,
    });
  });
  after(async () => {
    for (const b of buses) await b.close();
    await raw.close();
    await admin.close();
  });

  /** A bus in a fresh namespace (or in `prefix`, to share it with another bus: another process). */
  const newBus = (prefix?: string, maxBatch?: number, sessionTimeoutMs?: number) => {
    const b = KafkaBus.connect(URL, {
      topicPrefix: prefix ?? `test.kb.${process.pid}.${randomBytes(4).toString('hex')}.`,
      maxBatch,
      sessionTimeoutMs,
    });
    buses.push(b);
    return b;
  };
  const collect = <T>(into: Delivered<T>[]) => ({
    handle: (batch: Batch<T>) => {
      into.push(...batch.records);
      return undefined;
    },
  });
  /** The group's committed offsets on the topic, as the broker has them. */
  const committed = async (bus: KafkaBus, group: string, topic: Topic<unknown>) => {
    const [g] = await admin.listConsumerGroupOffsets({ groups: [bus.prefix + group] });
    const out = new Map<number, bigint>();
    for (const t of g?.topics ?? [])
      if (t.name === bus.name(topic))
        for (const p of t.partitions)
          if (p.committedOffset >= 0n) out.set(p.partitionIndex, p.committedOffset);
    return out;
  };

  describe('the bus contract (test/support/bus-contract.ts, also run on the in-process bus)', () => {
    busContract(async () => {
      const bus = newBus();
      return {
        bus,
        durable: true,
        publishUnvalidated: async (topic, key, value) => {
          await raw.send({
            messages: [
              {
                topic: bus.name(topic),
                key,
                value: JSON.stringify(value),
                partition: partitionFor(key, topic.partitions),
              },
            ],
          });
        },
        rebalancing: async (group) => {
          const name = bus.prefix + group;
          await waitFor(
            `${name} to rebalance`,
            async () => (await admin.describeGroups({ groups: [name] })).get(name)?.state,
            (state) => state === 'PreparingRebalance' || state === 'CompletingRebalance',
            { timeoutMs: 60_000, everyMs: 100 },
          );
        },
      };
    });
  });

  it('connect() parses kafka:// URLs', () => {
    assert.deepEqual(KafkaBus.connect('kafka://a:1,b:2').brokers, ['a:1', 'b:2']);
    assert.deepEqual(KafkaBus.connect('kafka://host').brokers, ['host:9092']);
    assert.throws(() => KafkaBus.connect('http://host:9092'), /not a Kafka URL/);
    assert.throws(() => KafkaBus.connect('kafka://host:port'), /not a broker address/);
  });

  it('ensureTopics is idempotent, creates compacted topics, and refuses a partition count that differs', async () => {
    const bus = newBus();
    const latest = defineTopic<Msg>({ ...numbers, name: 'latest', partitions: 2, compacted: true });
    await bus.ensureTopics([numbers, latest]);
    await bus.ensureTopics([numbers, latest]);
    await newBus(bus.prefix).ensureTopics([numbers, latest]); // another process, same topics
    const md = await admin.metadata({ topics: [bus.name(numbers), bus.name(latest)] });
    assert.equal(md.topics.get(bus.name(numbers))?.partitionsCount, 4);
    assert.equal(md.topics.get(bus.name(latest))?.partitionsCount, 2);
    const [cfg] = await admin.describeConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: bus.name(latest),
          configurationKeys: ['cleanup.policy'],
        },
      ],
    });
    assert.equal(cfg?.configs.find((c) => c.name === 'cleanup.policy')?.value, 'compact');

    await admin.createTopics({ topics: [bus.name('two')], partitions: 2, replicas: 1 });
    const two = defineTopic<Msg>({ ...numbers, name: 'two', partitions: 4 });
    await assert.rejects(bus.ensureTopics([two]), /has 2 partitions but cryptocast declares 4/);
  });

  it("a replication factor above the broker count fails ensureTopics at once with the broker's refusal", async () => {
    // Waiting does not mend it: before, the bus retried for ever and a service stayed not-ready without a word.
    const bus = KafkaBus.connect(URL, {
      topicPrefix: `test.rf.${randomBytes(4).toString('hex')}.`,
      replicationFactor: 3,
    });
    try {
      const started = Date.now();
      await assert.rejects(bus.ensureTopics([numbers]));
      assert.ok(Date.now() - started < 20_000, `refused after ${Date.now() - started} ms`);
    } finally {
      await bus.close();
    }
  });

  it('round trip: keys in their murmur2 partition, partitions in offset order, each record once', async () => {
    const bus = newBus();
    await bus.ensureTopics([numbers]);
    // Invalid data is a bug: the call throws, and nothing of it is written.
    await assert.rejects(
      bus.publish(numbers, [...msgs(10), { v: 1, pair: '', n: 1.5 } as Msg]),
      /publish to numbers: invalid value: pair: .*n: /,
    );
    assert.deepEqual((await bus.offsets(bus.name(numbers))).latest, [0n, 0n, 0n, 0n]);
    const sent = msgs(3_000);
    const t0 = Date.now();
    await bus.publish(numbers, sent.slice(0, 1_000));
    await bus.publish(numbers, sent.slice(1_000));
    const seen: Delivered<Msg>[] = [];
    const batches: number[] = [];
    const sub = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 'test',
      handle: (b) => {
        batches.push(b.records.length);
        assert.ok(b.records.every((r) => r.partition === b.partition));
        seen.push(...b.records);
        return undefined;
      },
    });
    await sub.caughtUp();
    await sub.stop();

    assert.equal(seen.length, sent.length);
    assert.deepEqual(
      seen.map((r) => r.value.n).sort((a, b) => a - b),
      sent.map((m) => m.n),
    );
    // The partition is the one the in-process bus would choose, and every record keeps its key.
    for (const r of seen) {
      assert.equal(r.topic, 'numbers');
      assert.equal(r.key, r.value.pair);
      assert.equal(r.partition, partitionFor(r.key, 4));
      assert.ok(r.timestamp >= t0 - 1_000 && r.timestamp <= Date.now() + 1_000, 'append time stamp');
    }
    // Per partition: offsets 0, 1, 2, ... in order; per key: the order of publishing.
    for (let p = 0; p < 4; p++) {
      const offsets = seen.filter((r) => r.partition === p).map((r) => Number(r.offset));
      assert.deepEqual(
        offsets,
        offsets.map((_, i) => i),
      );
    }
    for (const pair of PAIRS) {
      const ns = seen.filter((r) => r.key === pair).map((r) => r.value.n);
      assert.deepEqual(
        ns,
        sent.filter((m) => m.pair === pair).map((m) => m.n),
      );
    }
    assert.ok(batches.length < 40, `batched delivery (${batches.length} handler calls for 3000 records)`);
    // Everything was committed: the group's offsets are the partitions' ends.
    const { latest } = await bus.offsets(bus.name(numbers));
    assert.deepEqual(
      [...(await committed(bus, 'g', numbers))].sort((a, b) => a[0] - b[0]),
      latest.map((end, p) => [p, end]),
    );
  });

  it('invalid records (schema, not JSON, giant, null) go to dlq with reason and payload; valid ones flow on', async () => {
    const bus = newBus();
    await bus.ensureTopics([numbers, topics.dlq]);
    const p = partitionFor('BTC/USD', 4);
    const giant = `{"v":1,"pair":"BTC/USD","n":"${'x'.repeat(300_000)}"}`;
    const bad = [
      '{"v":1,"pair":"BTC/USD","n":"two"}', // valid JSON, fails the schema
      'not json at all',
      giant,
    ];
    await bus.publish(numbers, msgs(5, 0, ['BTC/USD']));
    await raw.send({
      messages: bad.map((value) => ({ topic: bus.name(numbers), key: 'BTC/USD', value, partition: p })),
    });
    await raw.send({ messages: [{ topic: bus.name(numbers), key: 'BTC/USD', partition: p }] }); // null value
    await bus.publish(numbers, msgs(5, 5, ['BTC/USD']));

    const seen: Delivered<Msg>[] = [];
    const sub = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 'test-svc',
      ...collect(seen),
    });
    await sub.caughtUp();
    await sub.stop();
    assert.deepEqual(
      seen.map((r) => [r.value.n, Number(r.offset)]),
      [...[0, 1, 2, 3, 4].map((n) => [n, n]), ...[5, 6, 7, 8, 9].map((n) => [n, n + 4])],
    );

    const dead = (await bus.readTail(topics.dlq, 100)).map((r) => r.value);
    assert.equal(dead.length, 4);
    for (const [i, d] of dead.entries()) {
      assert.equal(d.service, 'test-svc');
      assert.equal(d.origin, 'numbers');
      assert.equal(d.kind, 'invalid');
      assert.equal(d.key, 'BTC/USD');
      assert.equal(d.partition, p);
      assert.equal(d.offset, String(5 + i));
    }
    assert.match(dead[0]!.reason, /^n: .*number/);
    assert.equal(dead[0]!.payload, bad[0]);
    assert.match(dead[1]!.reason, /^not JSON: /);
    assert.equal(dead[1]!.payload, 'not json at all');
    assert.match(dead[2]!.reason, /^n: /);
    assert.equal(dead[2]!.truncated, true);
    assert.equal(dead[2]!.payloadBytes, giant.length);
    assert.equal(dead[2]!.payload, giant.slice(0, DLQ_MAX_PAYLOAD_CHARS));
    assert.match(dead[3]!.reason, /no value/);

    // The group committed past the dead letters: a restart does not meet them again.
    assert.equal((await committed(bus, 'g', numbers)).get(p), 14n);
  });

  it('commits only after the handler resolved, and only up to its CommitPlan: a restart re-reads from there', async () => {
    const bus = newBus();
    await bus.publish(single, msgs(100));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let entered = false;
    const s1 = await bus.subscribe<Msg>({
      topic: single,
      group: 'g',
      service: 'test',
      handle: async (b) => {
        entered = true;
        await gate;
        assert.equal(b.records.length, 100);
        return new Map([[b.partition, 40n]]);
      },
    });
    await until('the handler to start', () => entered);
    // The window is explicit: the group's offsets are read again and again for over a second (longer than the
    // member's 1 s heartbeat, so the member has talked to the broker meanwhile) while the handler holds the batch.
    const heldSince = Date.now();
    for (let reads = 0; reads < 5 || Date.now() - heldSince < 1_200; reads++)
      assert.equal((await committed(bus, 'g', single)).size, 0, 'nothing committed while the handler runs');
    release();
    await s1.caughtUp();
    await s1.stop();
    assert.equal((await committed(bus, 'g', single)).get(0), 40n);

    const again: Delivered<Msg>[] = [];
    const s2 = await bus.subscribe<Msg>({ topic: single, group: 'g', service: 'test', ...collect(again) });
    await s2.caughtUp();
    await s2.stop();
    assert.deepEqual(
      again.map((r) => [Number(r.offset), r.value.n]),
      Array.from({ length: 60 }, (_, i) => [40 + i, 40 + i]),
    );
    assert.equal((await committed(bus, 'g', single)).get(0), 100n);
  });

  // `service index-sink` stops its sink from an abort listener and again on its main path: the second call returned at
  // once, and the bus was closed under the first one's handler still running.
  it('a second stop() waits for the first: neither returns while the handler is still running', async () => {
    const bus = newBus();
    await bus.publish(single, msgs(10));
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    let handlerDone = false;
    const sub = await bus.subscribe<Msg>({
      topic: single,
      group: 'g',
      service: 'test',
      handle: async () => {
        entered();
        await released;
        handlerDone = true;
        return undefined;
      },
    });
    await inHandler;
    const stops = [sub.stop(), sub.stop()];
    let secondDone = false;
    void stops[1]!.then(() => {
      secondDone = true;
    });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    const early = secondDone;
    release();
    await Promise.all(stops);
    assert.equal(early, false, 'the second stop returned while the handler was running');
    assert.equal(handlerDone, true);
  });

  it('a handler that throws gets the same records again, after a back-off, and nothing is committed for them', async () => {
    const bus = newBus(undefined, 25);
    await bus.publish(single, msgs(100));
    const calls: { first: bigint; n: number; at: number }[] = [];
    const handled: number[] = [];
    const sub = await bus.subscribe<Msg>({
      topic: single,
      group: 'g',
      service: 'test',
      handle: (b) => {
        calls.push({ first: b.records[0]!.offset, n: b.records.length, at: Date.now() });
        // The third batch (offsets 50..74) fails twice.
        if (b.records[0]!.offset === 50n && calls.filter((c) => c.first === 50n).length <= 2)
          throw new Error('downstream unavailable');
        handled.push(...b.records.map((r) => r.value.n));
        return undefined;
      },
    });
    await sub.caughtUp();
    await sub.stop();
    assert.deepEqual(
      calls.map((c) => [Number(c.first), c.n]),
      [
        [0, 25],
        [25, 25],
        [50, 25],
        [50, 25],
        [50, 25],
        [75, 25],
      ],
    );
    assert.deepEqual(
      handled,
      Array.from({ length: 100 }, (_, i) => i),
    );
    // Backed off between attempts instead of spinning.
    assert.ok(calls[3]!.at - calls[2]!.at >= 150, `first retry after ${calls[3]!.at - calls[2]!.at} ms`);
    assert.ok(calls[4]!.at - calls[3]!.at >= 300, `second retry after ${calls[4]!.at - calls[3]!.at} ms`);
    assert.equal((await committed(bus, 'g', single)).get(0), 100n);
  });

  it('a record the handler can never take is narrowed down, dead-lettered once, and the rest flows on (commit held behind)', async () => {
    const bus = newBus(undefined, 25);
    await bus.ensureTopics([single, topics.dlq]);
    await bus.publish(single, msgs(100));
    const handled: number[] = [];
    let outage = 2;
    const sub = await bus.subscribe<Msg>({
      topic: single,
      group: 'g',
      service: 'test',
      handle: (b) => {
        // A dependency away twice first: retried as always, never quarantined.
        if (b.records[0]!.offset === 25n && outage-- > 0) throw new Error('store unavailable');
        // Record 60 breaks the handler's code, every time.
        if (b.records.some((r) => r.value.n === 60)) (undefined as unknown as { x: number }).x;
        for (const r of b.records) if (!handled.includes(r.value.n)) handled.push(r.value.n);
        // Holds its commit at the start, as a stage with open state does: every failure re-reads from offset 0.
        return new Map([[0, 0n]]);
      },
    });
    await until('every other record handled', () => handled.includes(99), 90_000);
    await sub.stop();
    assert.deepEqual(
      handled,
      Array.from({ length: 100 }, (_, i) => i).filter((n) => n !== 60),
    );
    const dead = (await bus.readTail(topics.dlq, 10)).map((r) => r.value);
    assert.equal(dead.length, 1, 'one dead letter');
    assert.equal(dead[0]!.kind, 'handler-error');
    assert.equal(dead[0]!.offset, '60');
    assert.match(dead[0]!.reason, /failed 3 times on this record alone: TypeError/);
    assert.deepEqual(JSON.parse(dead[0]!.payload), msgs(1, 60)[0]);
  });

  it('two members of one group split the 4 partitions and together see every record exactly once', async () => {
    const b1 = newBus();
    const b2 = newBus(b1.prefix);
    await b1.ensureTopics([numbers]);
    const a: Delivered<Msg>[] = [];
    const c: Delivered<Msg>[] = [];
    const owned = { a: new Set<number>(), c: new Set<number>() };
    const member = (into: Delivered<Msg>[], mine: Set<number>) => ({
      topic: numbers,
      group: 'shared',
      service: 'test',
      onAssign: (ps: readonly number[]) => {
        for (const p of ps) mine.add(p);
      },
      onRevoke: (ps: readonly number[]) => {
        for (const p of ps) mine.delete(p);
      },
      ...collect(into),
    });
    const sa = await b1.subscribe<Msg>(member(a, owned.a));
    assert.deepEqual([...owned.a].sort(), [0, 1, 2, 3], 'alone, the first member owns every partition');
    const sc = await b2.subscribe<Msg>(member(c, owned.c));
    await until('the first member to give up half', () => owned.a.size === 2);
    assert.equal(owned.c.size, 2);
    assert.deepEqual([...owned.a, ...owned.c].sort(), [0, 1, 2, 3]);

    const sent = msgs(1_000);
    assert.equal(new Set(sent.map((m) => partitionFor(m.pair, 4))).size, 4, 'the keys cover all partitions');
    await b1.publish(numbers, sent);
    await until('every record', () => a.length + c.length >= sent.length);
    await Promise.all([sa.caughtUp(), sc.caughtUp()]);
    assert.equal(a.length + c.length, sent.length, 'no record twice');
    assert.deepEqual(
      [...a, ...c].map((r) => r.value.n).sort((x, y) => x - y),
      sent.map((m) => m.n),
    );
    assert.ok(a.every((r) => owned.a.has(r.partition)) && c.every((r) => owned.c.has(r.partition)));

    // One member leaves: the other takes over its partitions from their committed offsets.
    await sc.stop();
    await until('the remaining member to own everything', () => owned.a.size === 4);
    const more = msgs(1_000, 1_000);
    await b1.publish(numbers, more);
    await sa.caughtUp();
    await sa.stop();
    assert.equal(a.length + c.length, 2_000, 'still no record twice');
    assert.deepEqual(
      [...a, ...c].map((r) => r.value.n).sort((x, y) => x - y),
      [...sent, ...more].map((m) => m.n),
    );
  });

  it('a member joining while another holds a batch longer than the session timeout: nobody reads that batch until it is handled and committed', async (t) => {
    const MAX_BATCH = 20;
    // The broker's least session timeout, so that a hold longer than it stays short.
    const SESSION_TIMEOUT_MS = 6_000;
    const b1 = newBus(undefined, MAX_BATCH, SESSION_TIMEOUT_MS);
    const b2 = newBus(b1.prefix, MAX_BATCH, SESSION_TIMEOUT_MS);
    const sent = msgs(2_000);
    await b1.publish(numbers, sent);
    const got: (Delivered<Msg> & { member: string })[] = [];
    // The first member holds its first batch after 200 records, on the test's word, while the second one joins: the
    // rebalance happens in the middle of consumption at a point the test chose, not at one a machine's speed chose
    // (a fast machine had consumed every record before a hold set from outside the handler was seen).
    let release = () => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    t.after(() => release()); // a failure must not leave the handler waiting: closing the bus awaits it
    let holding = false;
    const member = (name: string) => ({
      topic: numbers,
      group: 'g',
      service: 'test',
      handle: async (b: Batch<Msg>) => {
        if (name === 'a' && !holding && got.length >= 200) {
          holding = true;
          await hold;
        }
        got.push(...b.records.map((r) => ({ ...r, member: name })));
        return undefined;
      },
    });
    const sa = await b1.subscribe<Msg>(member('a'));
    await until('the first member to hold a batch', () => holding);
    // The rebalance, while the first member is busy. Its subscribe resolves once the group has synced.
    const joining = b2.subscribe<Msg>(member('c'));
    // The first member's client hears of the rebalance at its next heartbeat (1 s). It must not rejoin, nor
    // let the group hand its partitions to the new member, before its batch is handled and committed: the group
    // stays in PreparingRebalance meanwhile, and the first member stays in it although its batch takes longer than
    // the session timeout. Released once the group has stayed so for the session timeout and 3 heartbeats more, or
    // as soon as the new member reads (the fault: it reads the held batch's partition from the previous commit,
    // once the first member is evicted for its silence, or at once without the wait for the batch).
    const group = b1.prefix + 'g';
    let preparingSince: number | undefined;
    await waitFor(
      'the new member to read, or the group to stay rebalancing past the session timeout',
      async () => {
        if (got.some((r) => r.member === 'c')) return 'read';
        const state = (await admin.describeGroups({ groups: [group] })).get(group)?.state;
        if (state === 'PreparingRebalance') preparingSince ??= Date.now();
        else preparingSince = undefined;
        const held =
          preparingSince !== undefined && Date.now() - preparingSince >= SESSION_TIMEOUT_MS + 3_000;
        return held ? 'held' : state;
      },
      (s) => s === 'read' || s === 'held',
      { timeoutMs: 60_000, everyMs: 100 },
    );
    const readWhileHeld = got.filter((r) => r.member === 'c').length;
    const releasedAt = Date.now();
    release();
    const sc = await joining;
    // The rebalance completes as soon as the held batch is handled and committed.
    t.diagnostic(`the joining member synced ${Date.now() - releasedAt} ms after the batch was released`);
    await until('every record', () => new Set(got.map((r) => r.value.n)).size === sent.length, 120_000);
    await Promise.all([sa.caughtUp(), sc.caughtUp()]);
    await Promise.all([sa.stop(), sc.stop()]);
    assert.equal(readWhileHeld, 0, 'the new member read nothing while the first held its batch');
    assert.ok(
      got.some((r) => r.member === 'c'),
      'the new member got partitions after the batch',
    );
    // Exactly once here: the held batch was committed before the partitions moved, so their new owner starts after it.
    assert.equal(got.length - sent.length, 0, 'no record read twice');
    assert.deepEqual(
      got.map((r) => r.value.n).sort((x, y) => x - y),
      sent.map((m) => m.n),
    );
    // Within a partition, offsets are delivered in order.
    for (let p = 0; p < 4; p++) {
      const offsets = got.filter((r) => r.partition === p).map((r) => Number(r.offset));
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => x - y),
      );
    }
  });

  it('a member whose batch holds its rejoin past the rebalance timeout gives the batch back: batch.signal aborts, and each record is handled and published once', async (t) => {
    const MAX_BATCH = 20;
    const b1 = newBus(undefined, MAX_BATCH);
    const b2 = newBus(b1.prefix, MAX_BATCH);
    const out = defineTopic<Msg>({ ...single, name: 'handled' });
    await b1.ensureTopics([single, out]);
    const sent = msgs(200);
    await b1.publish(single, sent);
    // What each member published, as it published it: a record handled twice shows up twice.
    const published: { member: string; n: number; offset: bigint }[] = [];
    // The first member holds its chunk after 100 records (an OpenSearch outage in the index sink's retry loop) until
    // its signal says the partition is lost, or — the fault — until the other member has handled that chunk again.
    let release = () => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    t.after(() => release()); // a failure must not leave the handler waiting: closing the bus awaits it
    let heldFrom: bigint | undefined;
    let heldSince = 0;
    let gaveBackAfterMs: number | undefined;
    const lost = (signal: AbortSignal | undefined) =>
      new Promise<void>((r) => signal?.addEventListener('abort', () => r(), { once: true }));
    const member = (name: string, bus: KafkaBus) => ({
      topic: single,
      group: 'g',
      service: 'test',
      handle: async (b: Batch<Msg>) => {
        if (name === 'a' && heldFrom === undefined && published.length >= 100) {
          heldFrom = b.records[0]!.offset;
          heldSince = Date.now();
          await Promise.race([hold, lost(b.signal)]);
          if (b.signal?.aborted) {
            gaveBackAfterMs = Date.now() - heldSince;
            throw b.signal.reason;
          }
        }
        await bus.publish(
          out,
          b.records.map((r) => r.value),
        );
        published.push(...b.records.map((r) => ({ member: name, n: r.value.n, offset: r.offset })));
        return undefined;
      },
    });
    const sa = await b1.subscribe<Msg>(member('a', b1));
    await until('the first member to hold a chunk', () => heldFrom !== undefined);
    // The rebalance: the held chunk keeps the first member from rejoining (quiesce) for longer than the rebalance
    // timeout (30 s).
    const joining = b2.subscribe<Msg>(member('c', b2));
    await waitFor(
      'the held chunk to be given back, or handled by the other member',
      () => gaveBackAfterMs !== undefined || published.some((p) => p.member === 'c' && p.offset === heldFrom),
      (done) => done,
      { timeoutMs: 90_000, everyMs: 100 },
    );
    t.diagnostic(
      gaveBackAfterMs === undefined
        ? `the other member handled the held chunk ${Date.now() - heldSince} ms into the hold`
        : `the chunk was given back ${gaveBackAfterMs} ms into the hold`,
    );
    release();
    const sc = await joining;
    await until(
      'every record published',
      () => new Set(published.map((p) => p.n)).size === sent.length,
      120_000,
    );
    await Promise.all([sa.caughtUp(), sc.caughtUp()]);
    await Promise.all([sa.stop(), sc.stop()]);
    const onTopic = (await b1.readTail(out, 1_000)).map((r) => r.value.n);
    const twice = onTopic.filter((n, i) => onTopic.indexOf(n) !== i);
    assert.deepEqual(twice, [], 'records published twice (handled by both members)');
    assert.deepEqual(
      onTopic.sort((x, y) => x - y),
      sent.map((m) => m.n),
    );
    assert.ok(
      gaveBackAfterMs !== undefined,
      "the holding member's batch.signal aborted before the other read the chunk",
    );
  });

  it('a process that closes its bus exits by itself (no handle left open)', () => {
    const script = `
      import { KafkaBus } from ${JSON.stringify(join(ROOT, 'src/runtime/kafka/bus.ts'))};
      import { topics } from ${JSON.stringify(join(ROOT, 'src/schemas/topics.ts'))};
      const bus = KafkaBus.connect(${JSON.stringify(URL)}, { topicPrefix: 'test.kb.exit.${randomBytes(4).toString('hex')}.' });
      await bus.publish(topics.dlq, [{ v: 1, service: 's', origin: 'o', kind: 'k', reason: 'r', payload: '',
        payloadBytes: 0, truncated: false, ts: Date.now() }]);
      const sub = await bus.subscribe({ topic: topics.dlq, group: 'g', service: 's', handle: () => undefined });
      await sub.caughtUp();
      await bus.readTail(topics.dlq, 1);
      await bus.close();
      console.log('closed');`;
    const t0 = Date.now();
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CRYPTOCAST_LOG_LEVEL: 'error' },
    });
    assert.equal(out.trim(), 'closed');
    assert.ok(Date.now() - t0 < 30_000);
  });

  it('from "latest" skips the backlog of a new group; caughtUp waits for a slow handler', async () => {
    const bus = newBus(undefined, 50);
    await bus.publish(numbers, msgs(200));
    const late: Delivered<Msg>[] = [];
    const s1 = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'late',
      from: 'latest',
      service: 't',
      ...collect(late),
    });
    await s1.caughtUp(); // nothing to read: resolves at once
    await bus.publish(numbers, msgs(10, 200));
    await until('the new records', () => late.length === 10);
    await s1.stop();
    assert.deepEqual(
      late.map((r) => r.value.n).sort((x, y) => x - y),
      Array.from({ length: 10 }, (_, i) => 200 + i),
    );

    // Every batch is held until caughtUp has been called: caughtUp is asked while records are still unhandled.
    let asked = false;
    let handled = 0;
    const s2 = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'slow',
      service: 't',
      handle: async (b) => {
        await until('caughtUp to be called', () => asked);
        handled += b.records.length;
        return undefined;
      },
    });
    const caughtUp = s2.caughtUp();
    asked = true;
    await caughtUp;
    assert.equal(handled, 210, 'caughtUp resolved only once every record there at call time was handled');
    await s2.stop();
  });

  it('readToEnd: true only once every assigned partition is handed over to its end; at once for a group at the end', async () => {
    const bus = newBus(undefined, 50);
    await bus.publish(numbers, msgs(400, 0, PAIRS.slice(0, 4)));
    const seen: { n: number; readToEnd: boolean }[] = [];
    let sub: Awaited<ReturnType<KafkaBus['subscribe']>> | undefined;
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    sub = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'ends',
      service: 't',
      handle: async (b) => {
        await released; // the first batch waits: asked from outside meanwhile
        seen.push({ n: b.records.length, readToEnd: sub!.readToEnd() });
        return undefined;
      },
    });
    assert.equal(sub.readToEnd(), false, 'a backlog not handed over yet');
    release();
    await until('every record handled', () => seen.reduce((a, s) => a + s.n, 0) === 400);
    assert.equal(seen.at(-1)!.readToEnd, true, 'the last batch, in hand: read to the end');
    assert.equal(
      seen.filter((s) => s.readToEnd).length,
      1,
      'before it, a partition was behind (one not fetched yet counts from its end at assignment)',
    );
    assert.equal(sub.readToEnd(), true);
    await bus.publish(numbers, msgs(4, 400, PAIRS.slice(0, 4)));
    await until('the new records', () => seen.reduce((a, s) => a + s.n, 0) === 404);
    await sub.caughtUp();
    assert.equal(sub.readToEnd(), true);
    // A group that starts at the end: nothing to read, known before any fetch brings data (none will).
    const atEnd = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'at-end',
      from: 'latest',
      service: 't',
      handle: () => undefined,
    });
    assert.equal(atEnd.readToEnd(), true);
    await atEnd.stop();
    await sub.stop();
  });

  it('readToEnd: a batch whose handler failed is not read while it waits to be handed over again', async () => {
    const bus = newBus();
    await bus.publish(single, msgs(10));
    let failed!: () => void;
    const failure = new Promise<void>((r) => {
      failed = r;
    });
    let calls = 0;
    const handled: number[] = [];
    const sub = await bus.subscribe<Msg>({
      topic: single,
      group: 'fails-once',
      service: 't',
      handle: (b) => {
        if (++calls === 1) {
          failed();
          throw new Error('injected');
        }
        handled.push(...b.records.map((r) => r.value.n));
        return undefined;
      },
    });
    await failure;
    // A turn of the event loop: the failure is handled (the back-off before the retry is a 100 ms timer, later).
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1);
    assert.equal(sub.readToEnd(), false, 'the failed batch is still to be read');
    await until('the retry', () => handled.length === 10);
    assert.equal(sub.readToEnd(), true);
    await sub.stop();
    assert.equal(sub.readToEnd(), false, 'stopped');
  });

  it('readTail returns the last n records of every partition, in partition and offset order', async () => {
    const bus = newBus();
    assert.deepEqual(await bus.readTail(numbers, 5), [], 'empty topic');
    const sent = msgs(400);
    await bus.publish(numbers, sent);
    // An invalid record at the very end of one partition is skipped, not returned.
    const p0 = partitionFor('BTC/USD', 4);
    await raw.send({
      messages: [{ topic: bus.name(numbers), key: 'BTC/USD', value: '{oops', partition: p0 }],
    });
    const tail = await bus.readTail(numbers, 5);
    const { latest } = await bus.offsets(bus.name(numbers));
    const expected: [number, number][] = [];
    for (let p = 0; p < 4; p++) {
      const mine = sent.filter((m) => partitionFor(m.pair, 4) === p);
      const end = Number(latest[p]);
      // Offsets end-5 .. end-1, except the invalid last record of p0.
      for (let o = Math.max(0, end - 5); o < end; o++) if (o < mine.length) expected.push([p, o]);
    }
    assert.deepEqual(
      tail.map((r) => [r.partition, Number(r.offset)]),
      expected,
    );
    for (const r of tail) {
      const mine = sent.filter((m) => partitionFor(m.pair, 4) === r.partition);
      assert.deepEqual(r.value, mine[Number(r.offset)]);
    }
    assert.equal((await bus.readTail(numbers, 1_000)).length, 400, 'n larger than a partition: all of it');
    assert.deepEqual(await bus.readTail(numbers, 0), []);
  });
});
