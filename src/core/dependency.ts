import { type Logger, log as rootLog } from './log.ts';
import { metrics } from './metrics.ts';
import { dependency as setReadiness } from './readiness.ts';
import { type Backoff, backoffDelay } from './retry.ts';

/**
 * A dependency that is late or restarting (the broker, the database, the registry) is waited for, never a reason to
 * exit: `untilAvailable` retries an operation with capped exponential back-off and jitter until it succeeds, says so
 * once in the log when the dependency goes away and once when it is back, and reports it to the readiness probe
 * (`/ready` answers 503 with the reason meanwhile) and to `cryptocast_dependency_up{dependency}`.
 *
 * Errors that waiting cannot mend (a wrong configuration: a topic with another partition count, refused
 * credentials) are given to `permanent` and rethrown at once. `signal` ends the waiting (the service is stopping).
 */
export interface WaitOptions {
  signal?: AbortSignal;
  log?: Logger;
  backoff?: Backoff;
  permanent?: (err: unknown) => boolean;
  /**
   * Give up (rethrowing the last error) once this long has passed: a one-shot command (`features --store`) ends with
   * a clear error instead of waiting for ever as a service does. Default: never.
   */
  giveUpAfterMs?: number;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 15_000 };
const down = new Set<string>();

/** Reports a dependency up or down (once per change): logs, readiness, metrics. */
export function reportDependency(name: string, error: unknown | undefined, log: Logger = rootLog): void {
  if (error === undefined) {
    metrics.dependencyUp.set({ dependency: name }, 1);
    setReadiness(name, undefined);
    if (down.delete(name)) log.info({ dependency: name }, `${name} is available again`);
    return;
  }
  metrics.dependencyUp.set({ dependency: name }, 0);
  const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  setReadiness(name, reason);
  if (!down.has(name)) {
    down.add(name);
    log.warn({ dependency: name, reason }, `${name} is unavailable: waiting for it (retrying with back-off)`);
  }
}

export async function untilAvailable<T>(
  name: string,
  attempt: () => Promise<T>,
  o: WaitOptions = {},
): Promise<T> {
  const log = o.log ?? rootLog;
  const started = Date.now();
  for (let n = 0; ; n++) {
    try {
      const v = await attempt();
      reportDependency(name, undefined, log);
      return v;
    } catch (err) {
      if (o.permanent?.(err) || o.signal?.aborted) throw err;
      reportDependency(name, err, log);
      let delay = backoffDelay(n, o.backoff ?? DEFAULT_BACKOFF);
      if (o.giveUpAfterMs !== undefined) {
        const left = started + o.giveUpAfterMs - Date.now();
        if (left <= 0) throw err;
        delay = Math.min(delay, left);
      }
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          clearTimeout(t);
          resolve();
        };
        // Removed after each wait: a long outage added one listener per retry (Node warns past 10).
        const t = setTimeout(() => {
          o.signal?.removeEventListener('abort', onAbort);
          resolve();
        }, delay);
        o.signal?.addEventListener('abort', onAbort, { once: true });
      });
      if (o.signal?.aborted) throw err;
    }
  }
}

/**
 * PostgreSQL errors that waiting does not mend: a refused password, insufficient privilege. Connection refused, a
 * server starting or shutting down, a timeout: wait — and so for a role or database that does not exist yet, since
 * whoever provisions the server (an operator, an init script) creates them after it accepts connections; the wait
 * shows the reason on /ready meanwhile.
 */
export function permanentPostgresError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === '28P01' || code === '42501';
}
