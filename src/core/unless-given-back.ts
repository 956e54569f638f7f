/**
 * Waits for `work` unless `signal` (a batch's `Batch.signal`: its partition lost to this member) aborts first: then
 * rejects at once with the signal's reason, and `work` goes on unobserved (its failure, if any, is dropped). For the
 * waits of a stage's handler that no signal reaches inside — a store write or read through a slow or silent
 * PostgreSQL, which gives up only at its query timeout (two minutes) — so that a batch given back lets go of the
 * member's rejoin at once instead of holding it past the rebalance timeout (docs/architecture.md#rebalances). What the
 * work does meanwhile is not taken back: a write still lands (the stores upsert: the next owner writes the same rows).
 */
export function unlessGivenBack<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
