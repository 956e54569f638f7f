import { type Logger, log as rootLog } from '../../core/log.ts';
import { metrics } from '../../core/metrics.ts';
import { type Backoff, backoffDelay, parseRetryAfter } from '../../core/retry.ts';
import type { Channel } from './notifiers.ts';
import type { Notification } from './state.ts';

export interface DeliveryOptions {
  /** Attempts per notification, the first included (default 8: about 4 minutes of retries at the defaults). */
  maxAttempts?: number;
  backoff?: Backoff;
  /** Per request (default 10 s): a receiver that never answers costs this, not a stuck queue. */
  timeoutMs?: number;
  /** Notifications waiting per channel at most; the oldest is dropped (and counted) beyond it. */
  maxQueue?: number;
  logger?: Logger;
  /** Waits (tests make time pass instantly). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Sends notifications to their channels without ever holding up the caller: `send` queues and returns at once; one
 * worker per channel posts in order, retrying transient failures (network errors, timeouts, 408, 429, 5xx) with
 * back-off and honouring `Retry-After` (Slack's and Discord's 429s; Discord also puts `retry_after` in the body).
 * A 4xx other than 408/429 is final (a wrong URL does not get better). Results are counted in
 * `cryptocast_alert_notifications_total{channel, result}` (sent, retried, failed, dropped).
 */
export class AlertDelivery {
  private readonly channels: readonly Channel[];
  private readonly queues = new Map<string, Notification[]>();
  private readonly workers = new Map<string, Promise<void>>();
  private readonly maxAttempts: number;
  private readonly backoff: Backoff;
  private readonly timeoutMs: number;
  private readonly maxQueue: number;
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private closed = false;
  readonly stats = { sent: 0, retried: 0, failed: 0, dropped: 0 };

  constructor(channels: readonly Channel[], o: DeliveryOptions = {}) {
    this.channels = channels;
    this.maxAttempts = o.maxAttempts ?? 8;
    this.backoff = o.backoff ?? { initialMs: 1_000, maxMs: 60_000 };
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.maxQueue = o.maxQueue ?? 1_000;
    this.log = (o.logger ?? rootLog).child({ service: 'alerts' });
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms).unref()));
  }

  /** Queues a notification for every channel; returns at once. */
  send(n: Notification): void {
    if (this.closed) return;
    for (const c of this.channels) {
      let q = this.queues.get(c.name);
      if (q === undefined) {
        q = [];
        this.queues.set(c.name, q);
      }
      q.push(n);
      if (q.length > this.maxQueue) {
        q.shift();
        this.stats.dropped++;
        metrics.alertNotifications.inc({ channel: c.name, result: 'dropped' });
      }
      if (!this.workers.has(c.name)) {
        const w = this.drain(c).finally(() => this.workers.delete(c.name));
        this.workers.set(c.name, w);
      }
    }
  }

  /** Resolves when every queued notification has been sent or given up on. */
  async idle(): Promise<void> {
    while (this.workers.size > 0) await Promise.all(this.workers.values());
  }

  /** Stops accepting; waits up to `graceMs` for what is queued. */
  async close(graceMs = 5_000): Promise<void> {
    this.closed = true;
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  private async drain(c: Channel): Promise<void> {
    const q = this.queues.get(c.name)!;
    while (q.length > 0) {
      const n = q.shift()!;
      await this.deliver(c, n);
    }
  }

  private async deliver(c: Channel, n: Notification): Promise<void> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      let retryAfter: number | undefined;
      let reason: string;
      try {
        const res = await fetch(c.url, {
          method: 'POST',
          headers: c.headers,
          body: JSON.stringify(c.body(n)),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await res.text().catch(() => '');
        if (res.ok) {
          this.stats.sent++;
          metrics.alertNotifications.inc({ channel: c.name, result: 'sent' });
          return;
        }
        reason = `HTTP ${res.status}`;
        const transient = res.status === 408 || res.status === 429 || res.status >= 500;
        if (!transient) {
          this.giveUp(c, n, `${reason}: ${text.slice(0, 200)}`);
          return;
        }
        retryAfter = parseRetryAfter(res.headers.get('retry-after'));
        if (res.status === 429) {
          // Discord: {"retry_after": 1.5, ...} in seconds (the header is rounded up to whole seconds).
          try {
            const b = JSON.parse(text) as { retry_after?: unknown };
            if (typeof b.retry_after === 'number' && b.retry_after >= 0)
              retryAfter = Math.ceil(b.retry_after * 1000);
          } catch {
            // not JSON: the header (if any) decides
          }
        }
      } catch (err) {
        reason =
          (err as Error).name === 'TimeoutError'
            ? `no answer within ${this.timeoutMs} ms`
            : (err as Error).message;
      }
      if (attempt + 1 >= this.maxAttempts || this.closed) {
        this.giveUp(c, n, reason);
        return;
      }
      const delay = Math.min(retryAfter ?? backoffDelay(attempt, this.backoff), 10 * 60_000);
      this.stats.retried++;
      metrics.alertNotifications.inc({ channel: c.name, result: 'retried' });
      this.log.warn(
        { channel: c.name, rule: n.rule, reason, attempt: attempt + 1, delayMs: delay },
        'alert not delivered; retrying',
      );
      await this.sleep(delay);
    }
  }

  private giveUp(c: Channel, n: Notification, reason: string): void {
    this.stats.failed++;
    metrics.alertNotifications.inc({ channel: c.name, result: 'failed' });
    this.log.error({ channel: c.name, rule: n.rule, status: n.status, reason }, 'alert not delivered');
  }
}
