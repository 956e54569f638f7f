import { log } from '../core/log.ts';
import type { Bus } from '../runtime/bus.ts';

/**
 * Opens what a service needs before it can start — a store whose PostgreSQL may not be there yet, waited for — so that
 * a stop during that wait ends the command (undefined, logged as "stopped before it started") instead of holding the
 * process until the SIGKILL. `open` must end when `stop` aborts: the stores take it as their `signal`.
 */
export async function openUnlessStopped<T>(
  stop: AbortSignal,
  service: string,
  open: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await open();
  } catch (err) {
    if (!stop.aborted) throw err;
    log.info({ service }, 'stopped before it started');
    return undefined;
  }
}

/**
 * A stop (SIGINT, SIGTERM) that comes while a service is still starting — waiting for its broker, which only gives up
 * when the bus closes — closes the bus: the start fails at once and the command ends, instead of waiting for the
 * broker (under Kubernetes, a SIGKILL at every stop while Kafka is down). Nothing was consumed yet, so nothing is left
 * to finish cleanly. Call `started()` once the service runs; a later stop is the service's own clean stop.
 */
export function stopWhileStarting(stop: AbortSignal, bus: Bus) {
  let started = false;
  // A stop that came while the service was still opening its stores: the start is over before it begins.
  if (stop.aborted) void bus.close();
  else
    stop.addEventListener(
      'abort',
      () => {
        if (!started) void bus.close();
      },
      { once: true },
    );
  return {
    started(): void {
      started = true;
    },
    /**
     * Runs the service's `start`: true once it runs (counted as started), false when a stop ended the start (logged;
     * the caller returns quietly); a start failing on its own rethrows.
     */
    async start(service: string, start: () => Promise<void>): Promise<boolean> {
      try {
        await start();
      } catch (err) {
        if (!(stop.aborted && !started)) throw err;
        log.info({ service }, 'stopped before it started');
        return false;
      }
      started = true;
      return true;
    },
    /** A start failed because of the stop (end quietly), not on its own (rethrow). */
    stoppedWhileStarting(): boolean {
      return stop.aborted && !started;
    },
  };
}
