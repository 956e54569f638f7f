import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Long computations written as generators that `yield` between units of work (a breakdown's group, a chunk of rows),
 * run two ways from one body: to the end at once (`runToEnd`, for callers that want the value synchronously), or
 * with turns of the event loop between slices of about `sliceMs` (`runInTurns`), so that a stop signal is heard and
 * a progress bar drawn while it computes. A yield costs next to nothing: where to put one is decided by where a stop
 * should be heard, not by its price.
 */
export type Steps<T> = Generator<void, T, void>;

export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Slices of this many ms of computing between two turns: a stop is heard within about that (times the load). */
export const SLICE_MS = 50;

/** Runs `steps`, letting the event loop turn every `sliceMs`; aborted, it stops at the next turn with the reason. */
export async function runInTurns<T>(steps: Steps<T>, signal?: AbortSignal, sliceMs = SLICE_MS): Promise<T> {
  signal?.throwIfAborted();
  let since = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - since >= sliceMs) {
      await nextTurn();
      signal?.throwIfAborted();
      since = performance.now();
    }
  }
}
