import { InProcessBus } from '../../src/runtime/in-process-bus.ts';

/**
 * An in-process bus whose first publish to `topic` fails (a broker away for a moment): the stage's handler throws, and
 * the bus delivers the batch again after a back-off. `state.failures` counts the publishes to `topic` tried so far.
 * Close `inner`.
 */
export function busFailingOnce(topic: string): {
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
          if (t.name === topic && state.failures++ === 0) throw new Error('the broker is away (injected)');
          return target.publish(t as never, values as never);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { bus, inner, state };
}
