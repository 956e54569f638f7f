import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openAll } from '../../../src/stores/open.ts';

const store = (name: string, closed: string[]) => ({
  name,
  async close() {
    closed.push(name);
  },
});

describe('openAll', () => {
  it('opens each store in turn and gives them by name', async () => {
    const closed: string[] = [];
    const s = await openAll({ a: async () => store('a', closed), b: async () => store('b', closed) });
    assert.deepEqual([s.a.name, s.b.name], ['a', 'b']);
    assert.deepEqual(closed, []);
  });

  it('when one fails, closes those already open (newest first) and rethrows; the rest are never opened', async () => {
    const closed: string[] = [];
    let dOpened = false;
    await assert.rejects(
      openAll({
        a: async () => store('a', closed),
        b: async () => store('b', closed),
        c: async () => {
          throw new Error('postgresql: stopping');
        },
        d: async () => {
          dOpened = true;
          return store('d', closed);
        },
      }),
      /postgresql: stopping/,
    );
    assert.deepEqual(closed, ['b', 'a']);
    assert.equal(dOpened, false);
  });
});
