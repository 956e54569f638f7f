import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TimedMap } from '../../../src/core/timed-map.ts';

type Op =
  | { op: 'set'; key: number; time: number; again: boolean }
  | { op: 'delete'; key: number }
  | { op: 'drop'; from: number }
  | { op: 'clear' };

const ops = fc.array(
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant('set' as const),
        key: fc.nat(12),
        time: fc.nat(100),
        again: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.nat(12) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), from: fc.nat(110) }) },
    { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
  ),
  { maxLength: 80 },
);

describe('TimedMap: a map whose entries are dropped oldest first', () => {
  it('drops exactly the entries before the time, whatever the order they came in (against a plain map)', () => {
    fc.assert(
      fc.property(ops, (steps: Op[]) => {
        // The value is the time (as the maturity join's keys); a key present may be set again with its own time or,
        // with `again`, another one.
        const m = new TimedMap<number, number>((_, t) => t);
        const ref = new Map<number, number>();
        for (const s of steps) {
          if (s.op === 'set') {
            const t = s.again ? s.time : (ref.get(s.key) ?? s.time);
            m.set(s.key, t);
            ref.set(s.key, t);
          } else if (s.op === 'delete') assert.equal(m.delete(s.key), ref.delete(s.key));
          else if (s.op === 'clear') {
            m.clear();
            ref.clear();
          } else {
            const told: number[] = [];
            m.dropBefore(s.from, (k) => told.push(k));
            const want = [...ref].filter(([, t]) => t < s.from).map(([k]) => k);
            for (const k of want) ref.delete(k);
            assert.deepEqual(told.sort(), want.sort(), 'each dropped entry told once');
          }
          assert.deepEqual([...m].sort(), [...ref].sort());
          assert.equal(m.size, ref.size);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps a key that came late, was deleted and set again with a later time, until that time', () => {
    const m = new TimedMap<string, number>((_, t) => t);
    m.set('a', 50);
    m.set('b', 10); // late: before 'a'
    m.delete('b');
    m.set('b', 60);
    m.dropBefore(20);
    assert.deepEqual(
      [...m],
      [
        ['a', 50],
        ['b', 60],
      ],
    );
    m.dropBefore(61);
    assert.equal(m.size, 0);
  });

  it('moves a key set again with another time; refuses a time that is not a number', () => {
    const m = new TimedMap<string, number>((_, t) => t);
    m.set('a', 10);
    m.set('b', 20);
    m.set('a', 30); // later now: dropped after b, not with it
    m.dropBefore(25);
    assert.deepEqual([...m], [['a', 30]]);
    assert.throws(() => m.set('c', Number.NaN), RangeError);
    assert.throws(() => m.dropBefore(Number.NaN), RangeError);
    assert.deepEqual([...m], [['a', 30]]);
  });

  it('looks only at what it drops, the first entry it keeps, and the entries that came late', () => {
    let looked = 0;
    const m = new TimedMap<number, string>((t) => {
      looked++;
      return t;
    });
    for (let t = 0; t < 10_000; t++) m.set(t, 'x');
    m.set(-5, 'late'); // before the newest: one of the late ones
    looked = 0;
    m.dropBefore(100);
    assert.equal(m.size, 9_900, '0 … 99 and the late −5 dropped');
    assert.ok(!m.has(-5));
    assert.ok(looked <= 100 + 1 + 1, `looked at ${looked} entries`);
    looked = 0;
    m.dropBefore(100); // nothing more to drop
    assert.equal(looked, 1);
    assert.equal(m.size, 9_900);
  });
});
