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
