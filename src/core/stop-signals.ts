/**
 * SIGINT and SIGTERM for a long-running command: the first one asks it to stop cleanly (finish the batch in hand,
 * commit, close); a second one of either kind ends the process at once (exit 128 + signal number) for a user who
 * will not wait.
 *
 * The listeners stay registered (`process.on`, not `once`): a library that hooks the same signals to clean up after
 * itself (node-llama-cpp, through signal-exit) re-raises the signal when it sees no other listener left, which killed
 * `cryptocast run` with status 143 in the middle of its clean stop.
 */
export function onStopSignal(stop: (signal: NodeJS.Signals) => void): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`cryptocast: ${signal} again: stopping now, without a clean stop\n`);
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    stopping = true;
    stop(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/**
 * The items of `source` until `signal` aborts; then `stopped()` is thrown at once, even while a read is waiting (a pipe
 * that sends nothing more), so the caller's clean-up (an output's temporary file removed) runs before the command ends.
 */
export async function* untilAborted<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal,
  stopped: () => Error,
): AsyncGenerator<T> {
  const items = source[Symbol.asyncIterator]();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(stopped());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {}); // read only when raced below
  try {
    for (;;) {
      const next = await Promise.race([items.next(), aborted]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // A read still waiting would hold the source's clean-up behind it: left to the end of the process.
    if (signal.aborted) void items.return?.()?.catch(() => {});
    else await items.return?.();
  }
}
