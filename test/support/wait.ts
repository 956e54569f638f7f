/**
 * Waits for a condition with a deadline (never a fixed sleep: on a busy machine a sleep is either too short or a
 * waste). `check` is polled every `everyMs`; the error names what was awaited and the last value seen.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T> | T,
  done: (v: T) => boolean,
  o: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await check();
      if (done(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what} (last: ${JSON.stringify(last)}${lastError ? `, error: ${(lastError as Error).message}` : ''})`,
      );
    await new Promise((r) => setTimeout(r, o.everyMs ?? 200));
  }
}

/**
 * `p`, with a deadline: rejects naming `what` (a string, or a function read when the deadline passes, to say what was
 * seen) if `p` has not settled within `ms`, after calling `onLate` (to close what the wait held open). For an awaited
 * event rather than a polled state: the test fails instead of hanging.
 */
export function settlesWithin<T>(
  p: Promise<T>,
  ms: number,
  what: string | (() => string),
  onLate?: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onLate?.();
      reject(new Error(`still waiting after ${ms} ms for ${typeof what === 'string' ? what : what()}`));
    }, ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
