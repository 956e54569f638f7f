/**
 * Waits for `work` unless `stop` aborts first: then resolves at once, and `work` goes on unobserved (its failure, if
 * any, is left to whoever else awaits it). For waits that a stop should cut short — a replay's publish held back by
 * the bus's lag limit, the stages working through a recording's backlog — not for work whose end must be known.
 */
export function unlessStopped(work: Promise<void>, stop: AbortSignal): Promise<void> {
  if (stop.aborted) {
    work.catch(() => {});
    return Promise.resolve();
  }
  return new Promise<void>((resolve, reject) => {
    const onStop = () => {
      work.catch(() => {});
      resolve();
    };
    stop.addEventListener('abort', onStop, { once: true });
    work.then(
      () => {
        stop.removeEventListener('abort', onStop);
        resolve();
      },
      (err: unknown) => {
        stop.removeEventListener('abort', onStop);
        reject(err);
      },
    );
  });
}
