import { log } from '../core/log.ts';
import { backoffCap } from '../core/retry.ts';

/**
 * Publishes what a source has accepted, retrying with back-off until the transport takes it: accepted input is never
 * dropped because the broker is briefly away (a restart, a leader election), and the source is held back meanwhile
 * (back-pressure). Only a stop (`signal` aborted) ends the retries, with the last error.
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
