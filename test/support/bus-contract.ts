import assert from 'node:assert/strict';
import { it } from 'node:test';
import { z } from 'zod';
import { type Bus, PartitionLost, partitionFor } from '../../src/runtime/bus.ts';
import { defineTopic, type Topic } from '../../src/runtime/topic.ts';
import { topics } from '../../src/schemas/topics.ts';
import { waitFor } from './wait.ts';

/** A bus under test, and a way to append what its `publish` refuses (a misbehaving producer). */
export interface BusUnderTest {
  bus: Bus;
  /** Appends `value` as it is, not validated, to `topic` under `key`. */
  publishUnvalidated(topic: Topic<unknown>, key: string, value: unknown): Promise<void>;
  /**
   * Resolves once `group` is rebalancing (a member joining), on a transport whose rebalance waits for a member's
   * batch in hand (Kafka: docs/architecture.md#rebalances); without it, a joining member's `subscribe` is awaited.
   */
  rebalancing?(group: string): Promise<void>;
  /**
   * Its log outlives the process (Kafka): a stop gives the batch in hand back (`Batch.signal`), the group's next member
   * reads it again. The in-process log does not: its stop waits for the batch in hand, which is handled and committed.
   */
  durable: boolean;
}

const Numbered = z.object({ pair: z.string().min(1), n: z.number().int() });
type Numbered = z.infer<typeof Numbered>;
const numbered = defineTopic<Numbered>({
  name: 'contract.numbered',
  description: 'bus contract test records',
  schema: Numbered,
  key: (m) => m.pair,
  partitions: 1,
});
const twoPartitions = defineTopic<Numbered>({ ...numbered, name: 'contract.two', partitions: 2 });

/**
 * What services rely on from either transport, and cannot tell apart (src/runtime/bus.ts): run against the
 * in-process bus and a real Kafka broker. `open` gives a bus in a namespace of its own.
 */
export function busContract(open: () => Promise<BusUnderTest>): void {
  it('a record refused by its schema is dead-lettered once, however often a failing handler gets it again', async () => {
    const { bus, publishUnvalidated } = await open();
    await bus.ensureTopics([numbered, topics.dlq]);
    await bus.publish(
      numbered,
      [0, 1, 2].map((n) => ({ pair: 'A', n })),
    );
    await publishUnvalidated(numbered, 'A', { pair: 'A', n: 'three' }); // offset 3
    await bus.publish(
      numbered,
      [4, 5, 6].map((n) => ({ pair: 'A', n })),
    );
    // A store away for a while: the partition is re-read from its last commit (nothing committed: offset 0) each time.
    const failures = 4;
    let calls = 0;
    const handled: number[] = [];
    const sub = await bus.subscribe<Numbered>({
      topic: numbered,
      group: 'g',
      service: 'contract',
      handle: (b) => {
        if (++calls <= failures) throw new Error('store unavailable');
        handled.push(...b.records.map((r) => r.value.n));
        return undefined;
      },
    });
    await sub.caughtUp();
    await sub.stop();
    assert.ok(calls > failures, `the handler was called ${calls} times`);
    assert.deepEqual(handled, [0, 1, 2, 4, 5, 6]);
    const dead = (await bus.readTail(topics.dlq, 100)).map((r) => r.value);
    const forIt = dead.filter((d) => d.origin === numbered.name && d.offset === '3');
    assert.equal(
      forIt.length,
      1,
      `dead letters for offset 3 after ${failures} failed deliveries: ${forIt.length}`,
    );
    assert.equal(forIt[0]!.kind, 'invalid');
    assert.equal(forIt[0]!.partition, 0);
    assert.equal(dead.length, 1);
  });

  it('a quarantined record is dead-lettered once, however often a failing handler gets its chunk again', async () => {
    const { bus } = await open();
    await bus.ensureTopics([numbered, topics.dlq]);
    await bus.publish(
      numbered,
      [0, 1, 2, 3, 4, 5, 6].map((n) => ({ pair: 'A', n })),
    );
    // After the record at offset 3 is quarantined, a store away: each failure re-reads from offset 0 (the commit held
    // there), the quarantined record included.
    const outages = 4;
    let outageFailures = 0;
    const handled: number[] = [];
    const sub = await bus.subscribe<Numbered>({
      topic: numbered,
      group: 'g',
      service: 'contract',
      handle: (b) => {
        // Record 3 breaks the handler's code, every time (poison.ts).
        if (b.records.some((r) => r.value.n === 3)) (undefined as unknown as { x: number }).x;
        // Past it: it was quarantined.
        if (b.records.some((r) => r.offset > 3n) && outageFailures < outages) {
          outageFailures++;
          throw new Error('store unavailable');
        }
        for (const r of b.records) if (!handled.includes(r.value.n)) handled.push(r.value.n);
        // Holds its commit at the start, as a stage with open state does.
        return new Map([[b.partition, 0n]]);
      },
    });
    await sub.caughtUp();
    await sub.stop();
    assert.equal(outageFailures, outages, 'the outage came after the quarantine');
    assert.deepEqual(handled, [0, 1, 2, 4, 5, 6]);
    const dead = (await bus.readTail(topics.dlq, 100)).map((r) => r.value);
    assert.deepEqual(
      dead.map((d) => [d.kind, d.offset]),
      [['handler-error', '3']],
    );
  });
  it('a partition taken from a member while its batch is in hand is revoked only once that batch is through', async () => {
    const { bus, rebalancing } = await open();
    await bus.ensureTopics([twoPartitions, topics.dlq]);
    // One key on each partition, records on both.
    const keys = [0, 1].map((p) => ['A', 'B', 'C', 'D', 'E'].find((k) => partitionFor(k, 2) === p)!);
    await bus.publish(
      twoPartitions,
      [0, 1, 2, 3].map((n) => ({ pair: keys[n % 2]!, n })),
    );
    // The first member holds every batch it is handed until the second member is joining.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let holding!: () => void;
    const holds = new Promise<void>((r) => (holding = r));
    let revoked!: () => void;
    const revokes = new Promise<void>((r) => (revoked = r));
    const inHand = new Set<number>();
    const revokedInHand: number[] = [];
    const first = await bus.subscribe<Numbered>({
      topic: twoPartitions,
      group: 'g',
      service: 'contract-first',
      handle: async (b) => {
        inHand.add(b.partition);
        holding();
        await released;
        inHand.delete(b.partition);
        return undefined;
      },
      // A service drops the partition's state here: its handler, still at work on that partition, would go on with
      // the state gone.
      onRevoke: (ps) => {
        for (const p of ps) if (inHand.has(p)) revokedInHand.push(p);
        revoked();
      },
    });
    await holds;
    // The second member joins: the group gives it one of the two partitions. Where the rebalance waits for the
    // batch in hand, the second member's `subscribe` resolves only after it: the batch is released once the group
    // is rebalancing.
    const joining = bus.subscribe<Numbered>({
      topic: twoPartitions,
      group: 'g',
      service: 'contract-second',
      handle: () => undefined,
    });
    await (rebalancing === undefined ? joining : Promise.race([joining, rebalancing('g')]));
    release();
    const second = await joining;
    await revokes;
    await Promise.all([first.stop(), second.stop()]);
    assert.deepEqual(revokedInHand, [], 'onRevoke came while the batch of that partition was in the handler');
  });
  it('a batch in hand when the subscription stops: durable, its signal aborts and nothing of it is committed, whatever the handler returns; in-process, the stop waits for it and it is committed', async () => {
    const { bus, durable } = await open();
    await bus.ensureTopics([numbered, topics.dlq]);
    await bus.publish(
      numbered,
      [0, 1, 2].map((n) => ({ pair: 'A', n })),
    );
    let handed!: (signal: AbortSignal | undefined) => void;
    const inHand = new Promise<AbortSignal | undefined>((r) => (handed = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const first = await bus.subscribe<Numbered>({
      topic: numbered,
      group: 'g',
      service: 'contract-first',
      // A wait the signal ends (a retry through an outage); then it returns as if the batch were done.
      handle: async (b) => {
        handed(b.signal);
        await Promise.race([
          released,
          new Promise<void>((r) => b.signal?.addEventListener('abort', () => r(), { once: true })),
        ]);
        return undefined;
      },
    });
    const signal = await inHand;
    const stopping = first.stop();
    if (!durable) {
      // Nothing would read the batch again after the stop: it is let finish, and committed.
      let stopped = false;
      void stopping.then(() => {
        stopped = true;
      });
      await new Promise<void>((r) => setImmediate(r));
      assert.equal(stopped, false, 'the stop waits for the batch in hand');
      release();
      await stopping;
      assert.equal(signal?.aborted, false, 'the signal of the batch in hand is not aborted by a stop');
      const after: number[] = [];
      const next = await bus.subscribe<Numbered>({
        topic: numbered,
        group: 'g',
        service: 'contract-second',
        handle: (b) => {
          after.push(...b.records.map((r) => r.value.n));
          return undefined;
        },
      });
      await next.caughtUp();
      await next.stop();
      assert.deepEqual(after, [], 'the batch was committed');
      return;
    }
    try {
      await waitFor(
        'the signal of the batch in hand to abort',
        () => signal?.aborted === true,
        (a) => a,
        {
          timeoutMs: 30_000,
          everyMs: 50,
        },
      );
    } finally {
      release(); // a failure must not leave the handler (and the stop) waiting
    }
    await stopping;
    assert.ok(signal?.reason instanceof PartitionLost, `the reason: ${signal?.reason}`);
    // The group's next member gets the whole batch again: nothing of it was committed.
    const again: number[] = [];
    const second = await bus.subscribe<Numbered>({
      topic: numbered,
      group: 'g',
      service: 'contract-second',
      handle: (b) => {
        again.push(...b.records.map((r) => r.value.n));
        return undefined;
      },
    });
    await second.caughtUp();
    await second.stop();
    assert.deepEqual(again, [0, 1, 2]);
  });
  it('readTail with a signal: reads as without while it is live; once aborted, rejects with its reason', async () => {
    const { bus } = await open();
    await bus.ensureTopics([numbered, topics.dlq]);
    await bus.publish(
      numbered,
      [0, 1, 2].map((n) => ({ pair: 'A', n })),
    );
    const live = new AbortController();
    const tail = await bus.readTail(numbered, 2, { signal: live.signal });
    assert.deepEqual(
      tail.map((r) => r.value.n),
      [1, 2],
    );
    // A caller that gave up (its deadline passed) gets no records: the reason, as fetch() rejects.
    const gaveUp = new AbortController();
    const reason = new Error('the caller gave up');
    gaveUp.abort(reason);
    await assert.rejects(bus.readTail(numbered, 2, { signal: gaveUp.signal }), (err) => err === reason);
  });
  it('readPages: every record up to the end as of the call, once, each partition in order, one page of at most pageSize at a time', async () => {
    const { bus } = await open();
    await bus.ensureTopics([twoPartitions, topics.dlq]);
    const keys = [0, 1].map((p) => ['A', 'B', 'C', 'D', 'E'].find((k) => partitionFor(k, 2) === p)!);
    // Partition 0 busy (23 records), partition 1 quiet (2): the quiet one is read whole too.
    const sent = [
      ...Array.from({ length: 23 }, (_, n) => ({ pair: keys[0]!, n })),
      { pair: keys[1]!, n: 100 },
      { pair: keys[1]!, n: 101 },
    ];
    await bus.publish(twoPartitions, sent);
    const seen = new Map<number, bigint[]>();
    const values: number[] = [];
    let largestPage = 0;
    let inPage = false;
    let overlapped = false;
    let pages = 0;
    await bus.readPages(
      twoPartitions,
      async (page) => {
        if (inPage) overlapped = true;
        inPage = true;
        pages++;
        largestPage = Math.max(largestPage, page.length);
        // Appended while the read goes on: after its end, not read.
        if (pages === 1) await bus.publish(twoPartitions, [{ pair: keys[1]!, n: 999 }]);
        for (const r of page) {
          seen.set(r.partition, [...(seen.get(r.partition) ?? []), r.offset]);
          values.push(r.value.n);
        }
        await new Promise((r) => setImmediate(r));
        inPage = false;
      },
      { pageSize: 4 },
    );
    assert.equal(overlapped, false, 'a page was handed before the previous onPage resolved');
    assert.ok(largestPage >= 1 && largestPage <= 4, `largest page ${largestPage} records`);
    const offsets = (n: number) => Array.from({ length: n }, (_, o) => BigInt(o));
    assert.deepEqual(seen.get(0), offsets(23), 'partition 0: every offset once, in order');
    assert.deepEqual(seen.get(1), offsets(2), 'partition 1: every offset once, in order');
    assert.deepEqual(
      values.sort((a, b) => a - b),
      sent.map((m) => m.n),
    );
    // The caller's failure is its own: rejected with it, not retried.
    const mine = new Error('the fold failed');
    let calls = 0;
    await assert.rejects(
      bus.readPages(twoPartitions, () => {
        calls++;
        throw mine;
      }),
      (err) => err === mine,
    );
    assert.equal(calls, 1);
  });
  it('readPages since a time: each partition from its first record appended at or after it', async () => {
    const { bus } = await open();
    await bus.ensureTopics([twoPartitions, topics.dlq]);
    const keys = [0, 1].map((p) => ['A', 'B', 'C', 'D', 'E'].find((k) => partitionFor(k, 2) === p)!);
    const before = [0, 1, 2].map((n) => ({ pair: keys[n % 2]!, n }));
    await bus.publish(twoPartitions, before);
    const newestBefore = Math.max(...(await bus.readTail(twoPartitions, 10)).map((r) => r.timestamp));
    // The clock past the first records' time: the next ones are appended strictly after it.
    await waitFor(
      'the clock to pass the first records',
      () => Date.now(),
      (now) => now > newestBefore + 1,
      { timeoutMs: 10_000, everyMs: 2 },
    );
    await bus.publish(twoPartitions, [{ pair: keys[0]!, n: 10 }]);
    const since = Math.min(
      ...(await bus.readTail(twoPartitions, 10)).map((r) => r.timestamp).filter((t) => t > newestBefore),
    );
    const read = async (from: number) => {
      const got: number[] = [];
      await bus.readPages(twoPartitions, (page) => void got.push(...page.map((r) => r.value.n)), {
        since: from,
      });
      return got.sort((a, b) => a - b);
    };
    assert.deepEqual(
      await read(since),
      [10],
      'only what was appended at or after it; the quiet partition: nothing',
    );
    assert.deepEqual(await read(0), [0, 1, 2, 10], 'since the epoch: everything');
    assert.deepEqual(await read(since + 3_600_000), [], 'since a time after every record: nothing');
    const upTo = async (until: number, from?: number) => {
      const got: number[] = [];
      await bus.readPages(twoPartitions, (page) => void got.push(...page.map((r) => r.value.n)), {
        until,
        ...(from === undefined ? {} : { since: from }),
      });
      return got.sort((a, b) => a - b);
    };
    assert.deepEqual(
      await upTo(newestBefore),
      [0, 1, 2],
      'until a time: up to the last record at or before it',
    );
    assert.deepEqual(await upTo(since, since), [10], 'since and until the same time: what was appended then');
    assert.deepEqual(await upTo(0), [], 'until a time before every record: nothing');
  });
  it('subscribe with startAt: a fresh group starts each listed partition there (clamped to the log), the others at from', async () => {
    const { bus } = await open();
    await bus.ensureTopics([twoPartitions, topics.dlq]);
    const keys = [0, 1].map((p) => ['A', 'B', 'C', 'D', 'E'].find((k) => partitionFor(k, 2) === p)!);
    await bus.publish(
      twoPartitions,
      [0, 1, 2].map((n) => ({ pair: keys[0]!, n })),
    );
    await bus.publish(twoPartitions, [{ pair: keys[1]!, n: 3 }]);
    const second = (await bus.readTail(twoPartitions, 10)).find((r) => r.value.n === 1)!;
    const got = new Map<number, number[]>();
    const sub = await bus.subscribe({
      topic: twoPartitions,
      group: 'contract-start-at',
      from: 'earliest',
      // Partition 0 from its second record; partition 1 from past its end: its end.
      startAt: new Map([
        [second.partition, second.offset],
        [1 - second.partition, 99n],
      ]),
      service: 'contract',
      handle: (b) => {
        got.set(b.partition, [...(got.get(b.partition) ?? []), ...b.records.map((r) => r.value.n)]);
        return undefined;
      },
    });
    try {
      await bus.publish(twoPartitions, [
        { pair: keys[0]!, n: 10 },
        { pair: keys[1]!, n: 11 },
      ]);
      await waitFor(
        'the records from each start',
        () => [got.get(0) ?? [], got.get(1) ?? []],
        ([a, b]) => a!.includes(10) && b!.includes(11),
        { timeoutMs: 60_000 },
      );
      assert.deepEqual([got.get(0), got.get(1)], [[1, 2, 10], [11]]);
    } finally {
      await sub.stop();
    }
  });
  it('groupLag with a signal: answers as without while it is live; once aborted, rejects with its reason', async () => {
    const { bus } = await open();
    await bus.ensureTopics([numbered, topics.dlq]);
    await bus.publish(
      numbered,
      [0, 1].map((n) => ({ pair: 'A', n })),
    );
    const live = new AbortController();
    assert.equal(await bus.groupLag(numbered, 'contract-no-such-group', { signal: live.signal }), undefined);
    const gaveUp = new AbortController();
    const reason = new Error('the caller gave up');
    gaveUp.abort(reason);
    await assert.rejects(
      bus.groupLag(numbered, 'contract-no-such-group', { signal: gaveUp.signal }),
      (err) => err === reason,
    );
  });
}
