import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { log } from '../../../src/core/log.ts';
import { type Delivered, HoldBatch, murmur2, partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { POISON_LIMITS } from '../../../src/runtime/poison.ts';
import { defineTopic } from '../../../src/runtime/topic.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { busContract } from '../../support/bus-contract.ts';
import { waitFor } from '../../support/wait.ts';

const Msg = z.object({ pair: z.string(), n: z.number().int() });
type Msg = z.infer<typeof Msg>;
const numbers = defineTopic<Msg>({
  name: 'numbers',
  description: 'test numbers',
  schema: Msg,
  key: (m) => m.pair,
  partitions: 4,
});

const msgs = (count: number, pairs = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD', 'ADA/USD']) =>
  Array.from({ length: count }, (_, i) => ({ pair: pairs[i % pairs.length]!, n: i }));

/** Three records through a handler whose first `failures` calls throw `error()`; resolves once they are handled. */
async function failingFirst(failures: number, error: () => Error) {
  const bus = new InProcessBus();
  const topic = defineTopic<Msg>({ ...numbers, name: 'flaky', partitions: 1 });
  let calls = 0;
  const got: number[] = [];
  const sub = await bus.subscribe<Msg>({
    topic,
    group: 'g',
    service: 't',
    handle: (b) => {
      if (++calls <= failures) throw error();
      got.push(...b.records.map((r) => r.value.n));
      return undefined;
    },
  });
  await bus.publish(topic, msgs(3, ['A']));
  await sub.caughtUp();
  return { bus, got, calls: () => calls };
}

/** Every dead letter on the bus, as a consumer of `dlq` sees them. */
async function deadLetters(bus: InProcessBus) {
  const dead: Delivered<DeadLetter>[] = [];
  const sub = await bus.subscribe<DeadLetter>({
    topic: topics.dlq,
    group: 'dead-letters',
    service: 't',
    handle: (b) => {
      dead.push(...b.records);
      return undefined;
    },
  });
  return { dead, caughtUp: () => sub.caughtUp() };
}

describe('InProcessBus', () => {
  it('partitions by key with Kafka murmur2 and keeps per-key order', async () => {
    // Kafka's own test vectors (clients UtilsTest.testMurmur2): same hash ⇒ same partition as Kafka clients.
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [s, h] of vectors) assert.equal(murmur2(Buffer.from(s)), h, s);
    assert.equal(partitionFor('21', 7), (-973932308 & 0x7fffffff) % 7);
    const bus = new InProcessBus();
    const seen: Delivered<Msg>[] = [];
    const sub = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 't',
      handle: (b) => void seen.push(...b.records),
    });
    await bus.publish(numbers, msgs(1000));
    await sub.caughtUp();
    assert.equal(seen.length, 1000);
    for (const r of seen) assert.equal(r.partition, partitionFor(r.key, 4));
    const byKey = new Map<string, number[]>();
    for (const r of seen) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r.value.n]);
    for (const ns of byKey.values())
      assert.deepEqual(
        ns,
        [...ns].sort((a, b) => a - b),
      );
    await sub.stop();
    await bus.close();
  });

  it('refuses to publish an invalid value', async () => {
    const bus = new InProcessBus();
    await assert.rejects(bus.publish(numbers, [{ pair: 'X', n: 1.5 }]), /invalid value: n:/);
  });

  it('an invalid value fails the whole call: none of its values is published (as on Kafka)', async () => {
    const bus = new InProcessBus();
    await assert.rejects(
      bus.publish(numbers, [
        { pair: 'X', n: 1 },
        { pair: 'X', n: 1.5 },
        { pair: 'X', n: 3 },
      ]),
      /invalid value/,
    );
    assert.deepEqual(await bus.readTail(numbers, 10), []);
  });

  it('sends invalid records to dlq with the reason and carries on', async () => {
    const bus = new InProcessBus();
    const dead: DeadLetter[] = [];
    const good: number[] = [];
    const dlq = await bus.subscribe<DeadLetter>({
      topic: topics.dlq,
      group: 'd',
      service: 't',
      handle: (b) => void dead.push(...b.records.map((r) => r.value)),
    });
    const sub = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 'svc',
      handle: (b) => void good.push(...b.records.map((r) => r.value.n)),
    });
    await bus.publish(numbers, [{ pair: 'A', n: 1 }]);
    bus.publishUnvalidated('numbers', 'A', { pair: 'A', n: 'two' });
    await bus.publish(numbers, [{ pair: 'A', n: 3 }]);
    await sub.caughtUp();
    assert.deepEqual(good, [1, 3]);
    // The dead letter is published while the bad record is delivered: on the dlq topic by now, and caughtUp waits
    // for the dlq consumer to have it.
    await dlq.caughtUp();
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.service, 'svc');
    assert.equal(dead[0]!.origin, 'numbers');
    assert.equal(dead[0]!.kind, 'invalid');
    assert.match(dead[0]!.reason, /^n: /);
    assert.equal(dead[0]!.payload, JSON.stringify({ pair: 'A', n: 'two' }));
    await bus.close();
  });

  it('commits only what the handler says is safe: a new member of the group resumes from there', async () => {
    const bus = new InProcessBus();
    const topic = defineTopic<Msg>({ ...numbers, name: 'one', partitions: 1 });
    await bus.publish(topic, msgs(10, ['A']));
    const first: number[] = [];
    const s1 = await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      handle: (b) => {
        first.push(...b.records.map((r) => r.value.n));
        return new Map([[b.partition, 4n]]); // records 4.. are still needed
      },
    });
    await s1.caughtUp();
    await s1.stop();
    const second: number[] = [];
    const s2 = await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      handle: (b) => void second.push(...b.records.map((r) => r.value.n)),
    });
    await s2.caughtUp();
    assert.deepEqual(first, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(second, [4, 5, 6, 7, 8, 9]);
    await bus.close();
  });

  it('redelivers a batch whose handler failed, without committing it', async () => {
    const { bus, got, calls } = await failingFirst(1, () => new Error('disk full'));
    assert.deepEqual(got, [0, 1, 2]);
    assert.equal(calls(), 2);
    await bus.close();
  });

  it('a held batch is redelivered like a failed one, and logged once as a wait, not an error per back-off', async (t) => {
    const warn = t.mock.method(log, 'warn', () => {});
    const error = t.mock.method(log, 'error', () => {});
    const { bus, got, calls } = await failingFirst(3, () => new HoldBatch('the registry does not answer'));
    assert.deepEqual(got, [0, 1, 2]);
    assert.equal(calls(), 4);
    assert.equal(error.mock.callCount(), 0);
    const held = warn.mock.calls.filter((c) => c.arguments[1] === 'batch held; redelivered until it passes');
    assert.equal(held.length, 1);
    await bus.close();
  });

  /**
   * 40 records through a subscription whose handler throws `fail()` on a batch holding a record `bad` picks, after
   * `outage` failures of the first batch with a plain Error (a store away). What it took, and what was dead-lettered.
   */
  async function throughPoison(name: string, bad: (n: number) => boolean, fail: () => Error, outage = 0) {
    const bus = new InProcessBus({ maxBatch: 10 });
    const topic = defineTopic<Msg>({ ...numbers, name, partitions: 1 });
    const got: number[] = [];
    const sub = await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      handle: (b) => {
        if (b.records[0]!.offset === 0n && outage-- > 0) throw new Error('store unavailable');
        if (b.records.some((r) => bad(r.value.n))) throw fail();
        got.push(...b.records.map((r) => r.value.n));
        return undefined;
      },
    });
    const { dead, caughtUp } = await deadLetters(bus);
    await bus.publish(topic, msgs(40, ['A']));
    await sub.caughtUp();
    await caughtUp();
    await bus.close();
    return {
      got,
      dead: dead.map((d) => d.value),
      expected: Array.from({ length: 40 }, (_, i) => i).filter((n) => !bad(n)),
    };
  }

  it('a record the handler can never take is dead-lettered once, the rest flows on; an outage is only retried', async () => {
    const { got, dead, expected } = await throughPoison(
      'poisoned',
      (n) => n === 23,
      () => new RangeError('invalid array length'),
      4,
    );
    assert.deepEqual(got, expected);
    assert.deepEqual(
      dead.map((d) => [d.kind, d.offset, JSON.parse(d.payload).n]),
      [['handler-error', '23', 23]],
    );
    assert.match(dead[0]!.reason, /failed 3 times on this record alone: RangeError: invalid array length/);
  });

  it('three bad records in a row are each dead-lettered and the partition goes on (a burst is not a state fault)', {
    timeout: 60_000,
  }, async () => {
    const { got, dead, expected } = await throughPoison(
      'burst',
      (n) => n >= 23 && n <= 25,
      () => new TypeError('x is undefined'),
    );
    assert.deepEqual(got, expected);
    assert.deepEqual(
      dead.map((d) => d.offset),
      ['23', '24', '25'],
    );
  });

  it('a stage that commits behind (nothing committed at all) still gets a poison record dead-lettered', async () => {
    const bus = new InProcessBus({ maxBatch: 10 });
    const topic = defineTopic<Msg>({ ...numbers, name: 'behind', partitions: 1 });
    const got = new Set<number>();
    const sub = await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      handle: (b) => {
        if (b.records.some((r) => r.value.n === 57)) throw new TypeError('x is undefined');
        for (const r of b.records) got.add(r.value.n);
        return new Map([[0, 0n]]); // holds its commit at the start, like the feature writer's news subscription
      },
    });
    const { dead, caughtUp } = await deadLetters(bus);
    await bus.publish(topic, msgs(80, ['A']));
    await sub.caughtUp();
    await caughtUp();
    assert.deepEqual(
      [...got].sort((a, b) => a - b),
      Array.from({ length: 80 }, (_, i) => i).filter((n) => n !== 57),
    );
    assert.deepEqual(
      dead.map((d) => d.value.offset),
      ['57'],
    );
    await bus.close();
  });

  it('a fault in the handler’s state (a window a later record closes) costs at most stateAfter dead letters, then holds', async (t) => {
    const error = t.mock.method(log, 'error', () => {});
    const bus = new InProcessBus({ maxBatch: 16 });
    const topic = defineTopic<Msg>({ ...numbers, name: 'windows', partitions: 1 });
    // Windows of 10 records; record 5 poisons window 0, which fails when a record of the next window closes it.
    let open: { start: number; bad: boolean } | undefined;
    let calls = 0;
    const sub = await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      onRevoke: () => {
        open = undefined;
      },
      handle: (b) => {
        calls++;
        try {
          for (const r of b.records) {
            const w = Math.floor(r.value.n / 10) * 10;
            if (open !== undefined && w !== open.start && open.bad)
              throw new RangeError('window 0 cannot close');
            if (open === undefined || w !== open.start) open = { start: w, bad: false };
            if (r.value.n === 5) open.bad = true;
          }
        } catch (e) {
          open = undefined; // state dropped, rebuilt by the re-read from the commit
          throw e;
        }
        return new Map([[0, BigInt(open!.start)]]);
      },
    });
    await bus.publish(topic, msgs(40, ['A']));
    await waitFor(
      'the guard to give up on records and hold',
      () => error.mock.calls.some((c) => String(c.arguments[1]).includes('the fault is in its state')),
      (x) => x,
      { timeoutMs: 60_000 },
    );
    // Records 10..19 each fail alone (each closes the bad window 0): quarantined as a burst of bad records, up to
    // POISON_LIMITS.stateAfter; the 11th in a row is taken for the state it is.
    const tenInARow = Array.from({ length: POISON_LIMITS.stateAfter }, (_, i) => String(10 + i));
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value.offset);
    assert.deepEqual(dead, tenInARow, 'stateAfter records dead-lettered for it, not every record after it');
    const before = calls;
    await waitFor(
      'still retrying (held, not skipped)',
      () => calls,
      (n) => n > before + 1,
      { timeoutMs: 30_000 },
    );
    assert.deepEqual(
      (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value.offset),
      tenInARow,
    );
    await sub.stop();
    await bus.close();
  });

  it('splits partitions between members of a group; every record is seen exactly once', async () => {
    const bus = new InProcessBus();
    const a: Delivered<Msg>[] = [];
    const b: Delivered<Msg>[] = [];
    const sa = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 't',
      handle: (x) => void a.push(...x.records),
    });
    const sb = await bus.subscribe<Msg>({
      topic: numbers,
      group: 'g',
      service: 't',
      handle: (x) => void b.push(...x.records),
    });
    await bus.publish(numbers, msgs(500));
    await sa.caughtUp();
    await sb.caughtUp();
    assert.equal(a.length + b.length, 500);
    assert.ok(a.length > 0 && b.length > 0);
    const pa = new Set(a.map((r) => r.partition));
    for (const r of b) assert.ok(!pa.has(r.partition), 'a partition has one owner');
    assert.deepEqual(new Set([...a, ...b].map((r) => r.value.n)).size, 500);
    await bus.close();
  });

  it('applies back-pressure: publish waits while a consumer lags more than maxLag', async () => {
    const bus = new InProcessBus({ maxLag: 100, maxBatch: 10 });
    const topic = defineTopic<Msg>({ ...numbers, name: 'slow', partitions: 1 });
    let maxLagSeen = 0;
    let published = 0;
    let consumed = 0;
    await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      handle: async (b) => {
        await new Promise((r) => setImmediate(r));
        consumed += b.records.length;
        maxLagSeen = Math.max(maxLagSeen, published - consumed);
      },
    });
    for (let i = 0; i < 50; i++) {
      await bus.publish(topic, msgs(20, ['A']));
      published += 20;
    }
    assert.ok(maxLagSeen <= 100 + 20 + 10, `lag grew to ${maxLagSeen}`);
    await bus.close();
  });

  it('readToEnd: true only once every assigned partition is handed over to its end (the batch in hand counts); not for a failed batch', async () => {
    let sub: Awaited<ReturnType<InProcessBus['subscribe']>> | undefined;
    const atFailure: boolean[] = [];
    const bus = new InProcessBus({ maxBatch: 10, onHandlerFailure: () => atFailure.push(sub!.readToEnd()) });
    const topic = defineTopic<Msg>({ ...numbers, name: 'ends', partitions: 2 });
    const keys = ['A', 'D'];
    assert.notEqual(partitionFor('A', 2), partitionFor('D', 2), 'one key per partition');
    await bus.publish(topic, msgs(40, keys)); // 20 per partition: two batches each
    const seen: { n: number; readToEnd: boolean }[] = [];
    let failOnce = true;
    sub = await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      handle: (b) => {
        if (b.records[0]!.value.n === 20 && failOnce) {
          failOnce = false;
          throw new Error('injected');
        }
        seen.push({ n: b.records.length, readToEnd: sub?.readToEnd() ?? false });
        return undefined;
      },
    });
    await waitFor(
      'every record handled',
      () => seen.reduce((a, s) => a + s.n, 0),
      (n) => n === 40,
    );
    assert.equal(sub.readToEnd(), true);
    assert.deepEqual(atFailure, [false], 'a batch whose handler failed is not read');
    assert.equal(seen.at(-1)!.readToEnd, true, 'the last batch in hand: read to the end');
    assert.equal(
      seen.filter((s) => s.readToEnd).length,
      1,
      'before it, one partition or the other was behind',
    );
    bus.publishUnvalidated(topic.name, 'A', { pair: 'A', n: 40 });
    assert.equal(sub.readToEnd(), false, 'a record published and not handed over yet');
    await sub.caughtUp();
    assert.equal(sub.readToEnd(), true);
    const late = await bus.subscribe<Msg>({
      topic,
      group: 'late',
      service: 't',
      from: 'latest',
      handle: () => undefined,
    });
    assert.equal(late.readToEnd(), true, 'a group starting at the end has nothing to read');
  });

  it('readToEnd: the last batch of a burst over every partition sees the end; a stopped subscription has read nothing', async () => {
    const bus = new InProcessBus();
    const topic = defineTopic<Msg>({ ...numbers, name: 'bursts', partitions: 4 });
    let sub: Awaited<ReturnType<InProcessBus['subscribe']>> | undefined;
    const calls: boolean[] = [];
    sub = await bus.subscribe<Msg>({
      topic,
      group: 'g',
      service: 't',
      handle: () => {
        calls.push(sub!.readToEnd());
        return undefined;
      },
    });
    const keys = ['A', 'B', 'D', 'G'];
    assert.equal(new Set(keys.map((k) => partitionFor(k, 4))).size, 4, 'one key per partition');
    for (let burst = 1; burst <= 50; burst++) {
      calls.length = 0;
      await bus.publish(topic, msgs(4, keys));
      await sub.caughtUp();
      assert.equal(calls.at(-1), true, `burst ${burst}: the last batch handed over sees the end (${calls})`);
    }
    await sub.stop();
    assert.equal(sub.readToEnd(), false, 'stopped');
  });

  it('readTail returns the last records of each partition', async () => {
    const bus = new InProcessBus();
    await bus.publish(numbers, msgs(100));
    const tail = await bus.readTail(numbers, 3);
    const perPartition = new Map<number, number>();
    for (const r of tail) perPartition.set(r.partition, (perPartition.get(r.partition) ?? 0) + 1);
    for (const n of perPartition.values()) assert.ok(n <= 3);
    assert.ok(tail.some((r) => r.value.n === 99));
  });
});

describe('InProcessBus: the bus contract (test/support/bus-contract.ts, also run on Kafka)', () => {
  const buses: InProcessBus[] = [];
  after(async () => {
    for (const b of buses) await b.close();
  });
  busContract(async () => {
    const bus = new InProcessBus();
    buses.push(bus);
    return {
      bus,
      publishUnvalidated: async (topic, key, value) => bus.publishUnvalidated(topic.name, key, value),
      durable: false,
    };
  });
});
