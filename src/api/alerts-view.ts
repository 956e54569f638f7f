import { randomUUID } from 'node:crypto';
import { type Bus, offsetsAfter, type Subscription } from '../runtime/bus.ts';
import type { AlertNotification } from '../schemas/alert.ts';
import { topics } from '../schemas/topics.ts';

/**
 * The alerts active now, as the monitor announced them on the `alerts` topic (firing adds, resolved removes),
 * whichever process raised them. Rebuilt from the topic on start (the newest notification of each series).
 */
export class AlertsView {
  private readonly active = new Map<string, AlertNotification>();
  private subscription: Subscription | undefined;

  apply(n: AlertNotification): void {
    const k = `${n.rule}|${n.key}`;
    if (n.status === 'resolved') this.active.delete(k);
    else this.active.set(k, n);
  }

  async start(bus: Bus): Promise<void> {
    await bus.ensureTopics([topics.alerts]);
    // The whole topic (its retention bounds it), a page at a time, keeping the newest notification of each series: a
    // tail of 1,000 records missed an alert firing behind 1,000 notifications of other series (an alert storm over
    // many pairs), and the API did not list it while it was still firing.
    const newest = new Map<string, AlertNotification>();
    /** Per partition, the offset after the last record the read went through. */
    const readEnd = new Map<number, bigint>();
    await bus.readPages<AlertNotification>(topics.alerts, (page) => {
      for (const { value: n } of page) {
        const series = `${n.rule}|${n.key}`;
        if (n.at >= (newest.get(series)?.at ?? Number.NEGATIVE_INFINITY)) newest.set(series, n);
      }
      offsetsAfter(page, readEnd);
    });
    for (const n of [...newest.values()].sort((a, b) => a.at - b.at)) this.apply(n);
    // Then every record after the read, wherever the group's assignment lands: a fresh group starting where the read
    // ended (a partition the read found empty: from its start). Subscribing "from latest" before the read lost the
    // notifications published between the read and the assignment (on Kafka "latest" is fixed when the partitions
    // are assigned, which a late join or a rebalance puts after the read): a `resolved` published while the API
    // started left the alert listed as firing until its next notification.
    this.subscription = await bus.subscribe({
      topic: topics.alerts,
      group: `api-alerts-${randomUUID().slice(0, 8)}`,
      from: 'earliest',
      startAt: readEnd,
      service: 'api',
      handle: (batch) => {
        for (const r of batch.records) this.apply(r.value);
        return undefined;
      },
    });
  }

  list(): AlertNotification[] {
    return [...this.active.values()].sort((a, b) => a.startsAt - b.startsAt);
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}
