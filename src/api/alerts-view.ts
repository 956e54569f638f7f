import { randomUUID } from 'node:crypto';
import type { Bus, Subscription } from '../runtime/bus.ts';
import type { AlertNotification } from '../schemas/alert.ts';
import { topics } from '../schemas/topics.ts';

/**
 * The alerts active now, as the monitor announced them on the `alerts` topic (firing adds, resolved removes),
 * whichever process raised them. Rebuilt from the topic's tail on start.
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
    this.subscription = await bus.subscribe({
      topic: topics.alerts,
      group: `api-alerts-${randomUUID().slice(0, 8)}`,
      from: 'latest',
      service: 'api',
      handle: (batch) => {
        for (const r of batch.records) this.apply(r.value);
        return undefined;
      },
    });
    const tail = await bus.readTail(topics.alerts, 1000);
    tail.sort((a, b) => a.value.at - b.value.at);
    for (const r of tail) this.apply(r.value);
  }

  list(): AlertNotification[] {
    return [...this.active.values()].sort((a, b) => a.startsAt - b.startsAt);
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}
