import { metrics, onScrape } from '../core/metrics.ts';
import type { DeadLetter } from '../schemas/dlq.ts';
import type {
  Bus,
  Delivered,
  ReadPagesOptions,
  ReadTailOptions,
  SubscribeOptions,
  Subscription,
} from './bus.ts';
import type { Topic } from './topic.ts';

/**
 * A Bus that counts what passes through it — records published per topic, records handed to each service, dead
 * letters by origin and kind — and exposes each subscription's consumer lag at scrape time. Every service gets its
 * transport through `connectBus`, which wraps it, so every service exports the same transport metrics.
 */
export class MeteredBus implements Bus {
  readonly inner: Bus;

  constructor(inner: Bus) {
    this.inner = inner;
  }

  get kind() {
    return this.inner.kind;
  }

  ensureTopics(topics: readonly Topic<unknown>[]): Promise<void> {
    return this.inner.ensureTopics(topics);
  }

  async publish<T>(topic: Topic<T>, values: readonly T[]): Promise<void> {
    await this.inner.publish(topic, values);
    metrics.recordsPublished.inc({ topic: topic.name }, values.length);
    if (topic.name === 'dlq') countDeadLetters(values as readonly DeadLetter[]);
  }

  async subscribe<T>(options: SubscribeOptions<T>): Promise<Subscription> {
    const labels = { topic: options.topic.name, service: options.service };
    const sub = await this.inner.subscribe({
      ...options,
      handle: (batch) => {
        metrics.recordsConsumed.inc(labels, batch.records.length);
        return options.handle(batch);
      },
    });
    const lagLabels = { topic: options.topic.name, group: options.group };
    const remove = onScrape(() => metrics.consumerLag.set(lagLabels, sub.lag()));
    return {
      ...sub,
      lag: () => sub.lag(),
      caughtUp: () => sub.caughtUp(),
      readToEnd: () => sub.readToEnd(),
      stop: async () => {
        remove();
        metrics.consumerLag.remove(lagLabels);
        await sub.stop();
      },
    };
  }

  readTail<T>(topic: Topic<T>, perPartition: number, options?: ReadTailOptions): Promise<Delivered<T>[]> {
    return this.inner.readTail(topic, perPartition, options);
  }

  readPages<T>(
    topic: Topic<T>,
    onPage: (page: readonly Delivered<T>[]) => void | Promise<void>,
    options?: ReadPagesOptions,
  ): Promise<void> {
    return this.inner.readPages(topic, onPage, options);
  }

  groupLag(topic: Topic<unknown>, group: string, options?: ReadTailOptions): Promise<number | undefined> {
    return this.inner.groupLag(topic, group, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Counts dead letters in `cryptocast_dead_letters_total`: what services publish to `dlq` passes MeteredBus.publish;
 * what the transports dead-letter themselves (a record its schema refuses, a quarantined one) is counted where they
 * publish it, on the inner bus.
 */
export function countDeadLetters(letters: readonly DeadLetter[]): void {
  for (const d of letters) metrics.deadLetters.inc({ origin: d.origin, kind: d.kind });
}
