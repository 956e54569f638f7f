import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { type Delivered, partitionFor } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { RawConsumer } from '../../src/runtime/kafka/limits.ts';
import { defineTopic } from '../../src/runtime/topic.ts';
import { ensureKafka, KAFKA_URL } from '../support/kafka.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Whole-topic reads (readTail, readPages) on a real broker while a partition has no leader, as during an election
 * (its broker restarting, or away with the only replica). The broker's records and fetches are real; only the
 * metadata the read's own client sees says "no leader" for one partition until it has been asked `electionLookups`
 * times (or for good), as a broker answers while the controller elects one.
 *
 * The fault: a round that skipped the leaderless partition sent no request and came back empty at once; three such
 * rounds were taken for "the rest was removed by retention" and the read ended without that partition's records (the
 * predictor restarted then would publish again what that partition already had).
 */
const Msg = z.object({ v: z.literal(1), pair: z.string().min(1), n: z.number().int() });
type Msg = z.infer<typeof Msg>;
const numbers = defineTopic<Msg>({
  name: 'numbers',
  description: 'test numbers',
  schema: Msg,
  key: (m) => m.pair,
  partitions: 2,
});
const PAIRS = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD', 'ADA/USD', 'DOT/USD'];
/** The partition whose leader is being elected: one that holds records. */
const ELECTING = partitionFor(PAIRS[0]!, numbers.partitions);

/** A bus whose read clients see no leader for `ELECTING` in their first `electionLookups` metadata answers. */
class ElectingBus extends KafkaBus {
  electionLookups = 0;
  /** Metadata answers that said "no leader", and read clients closed. */
  readonly seen = { leaderless: 0, closed: 0 };

  override newRawClient(role: string): RawConsumer {
    const client = super.newRawClient(role);
    if (role !== 'tail' && role !== 'pages') return client;
    const metadata = client.metadata.bind(client) as (o: {
      topics: string[];
      forceUpdate?: boolean;
    }) => ReturnType<RawConsumer['metadata']>;
    const close = client.close.bind(client) as () => Promise<void>;
    client.metadata = (async (options: { topics: string[]; forceUpdate?: boolean }) => {
      const md = await metadata(options);
      if (this.seen.leaderless >= this.electionLookups) return md;
      this.seen.leaderless++;
      const topics = new Map(md.topics);
      for (const [name, tm] of md.topics) {
        const partitions = [...tm.partitions];
        partitions[ELECTING] = { ...partitions[ELECTING]!, leader: -1 };
        topics.set(name, { ...tm, partitions });
      }
      return { ...md, topics };
    }) as unknown as RawConsumer['metadata'];
    client.close = (async () => {
      this.seen.closed++;
      return close();
    }) as unknown as RawConsumer['close'];
    return client;
  }
}

describe('whole-topic reads during a leader election (real broker)', () => {
  const buses: KafkaBus[] = [];
  before(ensureKafka);
  after(async () => {
    for (const b of buses) await b.close();
  });

  const filled = async () => {
    const bus = new ElectingBus({
      brokers: [KAFKA_URL.replace(/^kafka:\/\//, '').split(',')[0]!],
      topicPrefix: `test.election.${process.pid}.${randomBytes(4).toString('hex')}.`,
    });
    buses.push(bus);
    await bus.ensureTopics([numbers]);
    const values = Array.from({ length: 60 }, (_, i) => ({
      v: 1 as const,
      pair: PAIRS[i % PAIRS.length]!,
      n: i,
    }));
    await bus.publish(numbers, values);
    const onElecting = values.filter((m) => partitionFor(m.pair, numbers.partitions) === ELECTING).length;
    assert.ok(onElecting > 0 && onElecting < values.length, 'both partitions hold records');
    return { bus, values, onElecting };
  };
  const ns = (records: readonly Delivered<Msg>[]) => records.map((r) => r.value.n).sort((a, b) => a - b);

  it('readTail waits for the leader and returns every partition', async () => {
    const { bus, values } = await filled();
    bus.electionLookups = 8;
    const tail = await bus.readTail(numbers, 1_000);
    assert.deepEqual(
      ns(tail),
      values.map((m) => m.n),
      'every record, those of the partition without a leader too',
    );
    assert.equal(bus.seen.leaderless, 8, 'the read went on through the election');
  });

  it('readPages waits for the leader and hands every record once', async () => {
    const { bus, values } = await filled();
    bus.electionLookups = 8;
    const got: Delivered<Msg>[] = [];
    await bus.readPages(numbers, (page) => void got.push(...page), { pageSize: 7 });
    assert.deepEqual(
      ns(got),
      values.map((m) => m.n),
      'every record, those of the partition without a leader too',
    );
    assert.equal(bus.seen.leaderless, 8, 'the read went on through the election');
  });

  it('a leader that never comes: the read waits until the caller gives up, then stops reading', async () => {
    const { bus } = await filled();
    bus.electionLookups = Number.POSITIVE_INFINITY;
    const controller = new AbortController();
    const got: Delivered<Msg>[] = [];
    const read = bus.readPages(numbers, (page) => void got.push(...page), { signal: controller.signal });
    // Still waiting well after three empty rounds would have ended it.
    await waitFor(
      'the read to ask for the leader again and again',
      () => bus.seen.leaderless,
      (n) => n >= 10,
      { timeoutMs: 60_000, everyMs: 50 },
    );
    controller.abort(new Error('gave up'));
    await assert.rejects(read, /gave up/);
    await waitFor(
      'the read client to be closed',
      () => bus.seen.closed,
      (n) => n >= 1,
      { timeoutMs: 30_000, everyMs: 50 },
    );
    assert.ok(
      got.every((r) => r.partition !== ELECTING),
      'nothing of the leaderless partition',
    );
  });
});
