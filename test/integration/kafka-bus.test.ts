import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Consumer } from '@platformatic/kafka';
import { z } from 'zod';
import type { Delivered } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka-bus.ts';
import { defineTopic, topics } from '../../src/runtime/topic.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';

const Msg = z.object({ pair: z.string(), n: z.number().int() });
type Msg = z.infer<typeof Msg>;
const numbers = defineTopic<Msg>({ name: 'numbers', schema: Msg, key: (m) => m.pair, partitions: 4 });
const msgs = (count: number, from = 0, pairs = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD']) =>
  Array.from({ length: count }, (_, i) => ({ pair: pairs[(from + i) % pairs.length]!, n: from + i }));

/** The Kafka transport against a real broker: the same contract the in-process bus is tested for. */
describe('KafkaBus on a real Kafka broker', () => {
  before(ensureKafka);
  const buses: KafkaBus[] = [];
  const bus = (prefix: string) => {
    const b = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    buses.push(b);
    return b;
  };
  after(async () => {
    for (const b of buses) await b.close();
  });

  it('keeps keys in their murmur2 partition and order per key; invalid records go to dlq with reason and payload', async () => {
    const b = bus(uniquePrefix('kb1'));
    await b.ensureTopics([numbers, topics.dlq]);
    await b.publish(numbers, msgs(2000));
    await b.publishRaw('numbers', 'BTC/USD', '{"pair":"BTC/USD","n":"two"}', 0);
    await b.publishRaw('numbers', 'BTC/USD', 'not json at all', 0);
    await b.publish(numbers, msgs(10, 2000));
    const seen: Delivered<Msg>[] = [];
    const sub = await b.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 'test-svc',
      handle: (x) => void seen.push(...x.records),
    });
    await sub.caughtUp();
    await sub.stop();
    assert.equal(seen.length, 2010);
    const byKey = new Map<string, number[]>();
    for (const r of seen) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r.value.n]);
    for (const ns of byKey.values())
      assert.deepEqual(
        ns,
        [...ns].sort((x, y) => x - y),
      );
    const dead = (await b.readTail(topics.dlq, 100)).map((r) => r.value);
    assert.equal(dead.length, 2);
    assert.match(dead[0]!.reason, /^n: /);
    assert.equal(dead[0]!.payload, '{"pair":"BTC/USD","n":"two"}');
    assert.match(dead[1]!.reason, /not JSON/);
    assert.deepEqual([dead[0]!.service, dead[0]!.origin, dead[0]!.partition], ['test-svc', 'numbers', 0]);
  });

  it('commits only up to the CommitPlan (what a restarted member would re-read from)', async () => {
    // Re-reading after a restart is exercised with real processes in candles-crash and features-crash tests.
    const b = bus(uniquePrefix('kb2'));
    const one = defineTopic<Msg>({ ...numbers, name: 'one', partitions: 1 });
    await b.publish(one, msgs(100, 0, ['A']));
    const seen: number[] = [];
    const s1 = await b.subscribe<Msg>({
      topic: one,
      group: 'g',
      service: 't',
      handle: (x) => {
        seen.push(...x.records.map((r) => r.value.n));
        return new Map([[x.partition, 40n]]);
      },
    });
    await s1.caughtUp();
    await s1.stop();
    assert.deepEqual(
      seen,
      Array.from({ length: 100 }, (_, i) => i),
    );
    const reader = new Consumer({ clientId: 'check', groupId: b.prefix + 'g', bootstrapBrokers: b.brokers });
    try {
      const committed = await reader.listCommittedOffsets({
        topics: [{ topic: b.name('one'), partitions: [0] }],
      });
      assert.deepEqual(committed.get(b.name('one')), [40n]);
    } finally {
      await reader.close(true);
    }
  });

  it('after a handler error, resumes every partition from its committed offset (nothing lost)', async () => {
    const b = bus(uniquePrefix('kb3'));
    await b.publish(numbers, msgs(400));
    let failed = false;
    const got = new Set<number>();
    const revoked: number[][] = [];
    const sub = await b.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 't',
      onRevoke: (ps) => void revoked.push([...ps]),
      handle: (x) => {
        if (!failed) {
          failed = true;
          throw new Error('downstream unavailable');
        }
        for (const r of x.records) got.add(r.value.n);
        return undefined;
      },
    });
    const deadline = Date.now() + 30_000;
    while (got.size < 400 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await sub.stop();
    assert.equal(got.size, 400);
    assert.ok(revoked.length >= 1, 'partitions were revoked so services drop state before the re-read');
  });

  it('splits partitions across two members of one group; together they see every record', async () => {
    const b1 = bus(uniquePrefix('kb4'));
    const b2 = KafkaBus.connect(KAFKA_URL, { topicPrefix: b1.prefix });
    buses.push(b2);
    await b1.ensureTopics([numbers]);
    const a: Delivered<Msg>[] = [];
    const c: Delivered<Msg>[] = [];
    const sa = await b1.subscribe<Msg>({
      topic: numbers,
      group: 'shared',
      service: 't',
      handle: (x) => void a.push(...x.records),
    });
    const sc = await b2.subscribe<Msg>({
      topic: numbers,
      group: 'shared',
      service: 't',
      handle: (x) => void c.push(...x.records),
    });
    await new Promise((r) => setTimeout(r, 3_000)); // let the group settle with both members
    await b1.publish(numbers, msgs(1000));
    const deadline = Date.now() + 30_000;
    while (new Set([...a, ...c].map((r) => r.value.n)).size < 1000 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    await sa.stop();
    await sc.stop();
    assert.equal(new Set([...a, ...c].map((r) => r.value.n)).size, 1000);
    assert.ok(a.length > 0 && c.length > 0, `both members consumed (${a.length} / ${c.length})`);
    const pa = new Set(a.map((r) => r.partition));
    assert.ok(
      c.every((r) => !pa.has(r.partition)),
      'a partition has one owner',
    );
  });
});
