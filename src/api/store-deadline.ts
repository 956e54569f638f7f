import { StoreNotOpenError } from './opening-store.ts';
import type { OutageLog } from './outage-log.ts';

/**
 * A store the API reads through: every call answers within `ms`, or fails with `StoreTimeoutError` (a 503
 * `store_unavailable`, as any failed read; `bus_unavailable` for the pipeline view, which reads the bus). Without it
 * a store that hangs (a PostgreSQL behind a dead connection, whose own query timeout is minutes) held each request
 * that reached it, and a shutdown waited for them all.
 *
 * Reads only: `migrate` and `close` go through untouched (a migration on a slow start, a close that must finish). The
 * read itself is not cancelled — its answer, when it comes, is dropped.
 */
export class StoreTimeoutError extends Error {}

const UNTIMED = new Set<PropertyKey>(['migrate', 'close', 'constructor']);

/**
 * `read`, or a `StoreTimeoutError` once `ms` have passed without its answer. With `outage`, the outcome is the store's
 * health: a failure goes to its log (which logs or counts it: the route answering it logs it no more), an answer ends
 * an outage under way. A store still opening is neither (`StoreNotOpenError`: no fault, and nothing was read).
 */
export function answerWithin<T>(read: Promise<T>, what: string, ms: number, outage?: OutageLog): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreTimeoutError(`the ${what} did not answer within ${ms / 1000} s`)),
      ms,
    );
    timer.unref();
  });
  const answer = Promise.race([read, late]).finally(() => clearTimeout(timer));
  if (outage === undefined) return answer;
  return answer.then(
    (value) => {
      outage.answered();
      return value;
    },
    (err: unknown) => {
      if (!(err instanceof StoreNotOpenError)) outage.failed(err);
      throw err;
    },
  );
}

/** `store`, each of whose reads answers within `ms` (`answerWithin`), its outcome told to `outage` when given. */
export function answeringWithin<T extends object>(store: T, what: string, ms: number, outage?: OutageLog): T {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (UNTIMED.has(prop)) return method.bind(target);
      return (...args: unknown[]) => {
        const result = method.apply(target, args);
        return result instanceof Promise ? answerWithin(result, what, ms, outage) : result;
      };
    },
  });
}
