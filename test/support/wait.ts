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
