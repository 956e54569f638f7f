import type { Bus } from '../../src/runtime/bus.ts';
import type { Topic } from '../../src/runtime/topic.ts';

/** The values of `topic` as a subscriber of group `group` reads them, appended to the array returned as they come. */
export async function collectValues<T>(bus: Bus, topic: Topic<T>, group = 'test'): Promise<T[]> {
  const values: T[] = [];
  await bus.subscribe<T>({
    topic,
    group,
    service: group,
    handle: (b) => {
      for (const r of b.records) values.push(r.value);
      return undefined;
    },
  });
  return values;
}
