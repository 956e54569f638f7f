import type { Bus } from '../runtime/bus.ts';

/**
 * A stop (SIGINT, SIGTERM) that comes while a service is still starting — waiting for its broker, which only gives up
 * when the bus closes — closes the bus: the start fails at once and the command ends, instead of waiting for the
 * broker (under Kubernetes, a SIGKILL at every stop while Kafka is down). Nothing was consumed yet, so nothing is left
 * to finish cleanly. Call `started()` once the service runs; a later stop is the service's own clean stop.
 */
export function stopWhileStarting(stop: AbortSignal, bus: Bus) {
  let started = false;
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
    /** A start failed because of the stop (end quietly), not on its own (rethrow). */
    stoppedWhileStarting(): boolean {
      return stop.aborted && !started;
    },
  };
}
