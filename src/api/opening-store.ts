/** What a call to a store that is still opening rejects with: the routes answer it with 503 `store_unavailable`. */
export class StoreNotOpenError extends Error {
  constructor(what: string) {
    super(`${what} is not open yet: waiting for it`);
    this.name = 'StoreNotOpenError';
  }
}

/** A store being opened in the background (`openingStore`): usable at once, answering for real once `opened`. */
export type OpeningStore<T> = T & {
  /** Resolves with the store once open; rejects with the opening's error. */
  readonly opened: Promise<T>;
  /** True once the store is open. */
  readonly isOpen: boolean;
};

/**
 * A store the API can be built on before it is open (a PostgreSQL that is late or unreachable at start): until
 * `opening` resolves, every method rejects at once with `StoreNotOpenError` naming `what` (so a request answers 503
 * at once, not after a connection timeout); after, every call goes to the store. `close()` before the store is open
 * closes it as soon as it opens (the caller aborts the opening itself, e.g. by its signal).
 *
 * Why a stand-in and not a store passed later: the routes, the feeds and the WebSocket hub each hold their store
 * from the moment the API is built, which is before it listens.
 */
export function openingStore<T extends { close(): Promise<void> }>(
  what: string,
  opening: Promise<T>,
): OpeningStore<T> {
  let store: T | undefined;
  let closing = false;
  const opened = opening.then((s) => {
    store = s;
    if (closing) void s.close();
    return s;
  });
  opened.catch(() => {}); // the caller awaits `opened` for the error; the stand-in keeps refusing meanwhile
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy({} as OpeningStore<T>, {
    get(_target, prop) {
      if (prop === 'opened') return opened;
      if (prop === 'isOpen') return store !== undefined;
      // Not a thenable: `await stand-in` must not look for a `then` method and call it.
      if (prop === 'then') return undefined;
      if (store !== undefined) {
        const v = Reflect.get(store, prop, store);
        if (typeof v !== 'function') return v;
        if (!bound.has(prop)) bound.set(prop, v.bind(store));
        return bound.get(prop);
      }
      if (prop === 'close')
        return async () => {
          closing = true;
        };
      return () => Promise.reject(new StoreNotOpenError(what));
    },
  });
}
