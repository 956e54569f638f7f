import { InProcessBus } from '../../src/runtime/in-process-bus.ts';

/**
 * An in-process bus whose `nth` publish to `topic` (default the first) fails (a broker away for a moment): the stage's
 * handler throws, and the bus delivers the batch again after a back-off. `state.failures` counts the publishes to
 * `topic` tried so far. Close `inner`.
 */
export function busFailingOnce(
  topic: string,
  nth = 1,
): {
  bus: InProcessBus;
  inner: InProcessBus;
  state: { failures: number };
} {
  const inner = new InProcessBus();
  const state = { failures: 0 };
  const bus = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'publish')
        return async (t: { name: string }, values: unknown[]) => {
          if (t.name === topic && ++state.failures === nth) throw new Error('the broker is away (injected)');
          return target.publish(t as never, values as never);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { bus, inner, state };
}

/**
 * Makes the first `write` of `store` fail (a store away for a moment): the stage's handler throws and gets its batch
 * again. `tries` counts the writes tried so far.
 */
export function failFirstWrite<S extends { write(rows: never): Promise<unknown> }>(
  store: S,
): { tries: number } {
  const state = { tries: 0 };
  const write = store.write.bind(store);
  store.write = (async (rows: never) => {
    if (state.tries++ === 0) throw new Error('the store is away (injected)');
    return write(rows);
  }) as S['write'];
  return state;
}
