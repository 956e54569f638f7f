import { AsyncLocalStorage } from 'node:async_hooks';
import type { InProcessBus } from '../../src/runtime/in-process-bus.ts';

/**
 * An in-process bus that sees what a stage's handler does after its batch was given back (`Batch.signal` aborted: the
 * partition's next owner reads the batch again). Each handler call runs with its batch's signal at hand, so that a
 * publish it makes is known to be its own: `state.late` lists the topics it published to once the signal had aborted.
 * `state.onRead`, if set, is called once, outside any handler, the first time a handler reads the bus (`readTail`,
 * `readPages`: the read-back a stage does at its first batch), and the read waits for it (`state.held`): the test starts a second
 * member of the group there, which takes the partition away in the middle of the batch. Close `inner`.
 */
export function busWatchingGiveBacks(inner: InProcessBus): {
  bus: InProcessBus;
  inner: InProcessBus;
  state: { late: string[]; onRead: (() => Promise<void>) | undefined; held: Promise<void> | undefined };
} {
  const inBatch = new AsyncLocalStorage<AbortSignal>();
  const state = {
    late: [] as string[],
    onRead: undefined as (() => Promise<void>) | undefined,
    /** The `onRead` call, once a handler's read started it. */
    held: undefined as Promise<void> | undefined,
  };
  const heldRead = async () => {
    const hook = state.onRead;
    if (hook === undefined || inBatch.getStore() === undefined) return;
    state.onRead = undefined;
    state.held = inBatch.exit(hook);
    await state.held;
  };
  const bus = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'subscribe')
        return (options: { handle: (batch: { signal: AbortSignal }) => unknown }) =>
          target.subscribe({
            ...options,
            handle: (batch: { signal: AbortSignal }) =>
              inBatch.run(batch.signal, () => options.handle(batch)),
          } as never);
      if (prop === 'publish')
        return (t: { name: string }, values: unknown[]) => {
          if (inBatch.getStore()?.aborted) state.late.push(t.name);
          return target.publish(t as never, values as never);
        };
      if (prop === 'readTail' || prop === 'readPages')
        return async (...args: unknown[]) => {
          await heldRead();
          return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { bus, inner, state };
}
