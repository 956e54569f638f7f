import { log } from '../core/log.ts';
import { backoffCap } from '../core/retry.ts';
import { deadLetter } from '../schemas/dlq.ts';
import { topics } from '../schemas/topics.ts';
import type { Bus } from './bus.ts';
import { failsTheSameWay } from './poison.ts';
import type { Topic } from './topic.ts';

/**
 * Publishes what a source has accepted, retrying with back-off until the transport takes it: accepted input is never
 * dropped because the broker is briefly away (a restart, a leader election), and the source is held back meanwhile
 * (back-pressure). A stop (`signal` aborted) ends the retries with the last error; so does an error that retrying
 * cannot mend (`failsTheSameWay`: a value the topic refuses), at once, for the caller to dead-letter.
 */
export async function publishDurably(
  source: string,
  signal: AbortSignal | undefined,
  publish: () => Promise<void>,
  onRetry?: () => void,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await publish();
      if (attempt > 0) log.info({ source, attempts: attempt + 1 }, 'publish succeeded again');
      return;
    } catch (err) {
      if (failsTheSameWay(err)) throw err;
      onRetry?.();
      if (signal?.aborted) throw err;
      const delay = backoffCap(attempt, { initialMs: 100, maxMs: 5_000 });
      log.warn(
        { source, err: (err as Error).message, attempt: attempt + 1, delayMs: delay },
        'publish failed; retrying',
      );
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * `publishDurably` for what a source accepted, when one value the topic refuses (a connector's bug: it passed the
 * source's own checks) must not hold the source for ever nor take the others with it: a refused call is published
 * again value by value, and each value the topic refuses goes to `dlq` (kind `invalid`, the refusal as the reason).
 * Returns what was published.
 */
export async function publishOrDeadLetter<T, V extends T>(
  bus: Bus,
  topic: Topic<T>,
  values: readonly V[],
  o: {
    source: string;
    service: string;
    signal?: AbortSignal;
    onRetry?: () => void;
    onRefused?: () => void;
    /** Each value once published: a caller whose call throws (a stop, a dead letter refused) knows what went out. */
    onPublished?: (value: V) => void;
  },
): Promise<readonly V[]> {
  try {
    await publishDurably(o.source, o.signal, () => bus.publish(topic, values), o.onRetry);
    for (const v of values) o.onPublished?.(v);
    return values;
  } catch (err) {
    if (!failsTheSameWay(err)) throw err;
  }
  const published: V[] = [];
  for (const v of values) {
    try {
      await publishDurably(o.source, o.signal, () => bus.publish(topic, [v]), o.onRetry);
      published.push(v);
      o.onPublished?.(v);
    } catch (err) {
      if (!failsTheSameWay(err)) throw err;
      o.onRefused?.();
      const reason = (err as Error).message;
      log.warn({ source: o.source, topic: topic.name, reason }, 'a value the topic refuses: dead-lettered');
      const dl = deadLetter({ service: o.service, origin: o.source, kind: 'invalid', reason, payload: v });
      await publishDurably(o.source, o.signal, () => bus.publish(topics.dlq, [dl]), o.onRetry);
    }
  }
  return published;
}
