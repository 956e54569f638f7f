/**
 * `load`'s answer, kept for `ttlMs`: a remote registry (MLflow) is asked at most once per `ttlMs` however many clients
 * poll, and requests that come while it is being asked share that one call. A failure is not kept: the next request
 * asks again.
 */
export function cachedFor<T>(
  ttlMs: number,
  load: () => Promise<T>,
  now: () => number = Date.now,
): () => Promise<T> {
  let kept: { at: number; value: T } | undefined;
  let asking: Promise<T> | undefined;
  return () => {
    if (kept !== undefined && now() - kept.at < ttlMs) return Promise.resolve(kept.value);
    asking ??= load().then(
      (value) => {
        kept = { at: now(), value };
        asking = undefined;
        return value;
      },
      (err: unknown) => {
        asking = undefined;
        throw err;
      },
    );
    return asking;
  };
}
