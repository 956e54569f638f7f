/**
 * `work`, or — once `signal` aborts, if first — a rejection with the signal's reason at once; `work` goes on unobserved
 * (its failure, if any, is dropped). For waits that no signal reaches inside: a stage's store write or read through a
 * slow or silent PostgreSQL, which gives up only at its query timeout (two minutes), raced against its `Batch.signal` so
 * that a batch given back lets go of the member's rejoin at once (docs/architecture.md#rebalances; what the work does
 * meanwhile is not taken back: a write still lands, and the stores upsert); a Kafka read a caller gave up on; a model
 * call past its deadline that the backend cannot abort.
 */
export function orAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
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
