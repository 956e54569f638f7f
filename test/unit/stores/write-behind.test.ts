import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WriteBehind } from '../../../src/stores/write-behind.ts';

/** A table whose writes finish when the test says so (or fail, when told to). */
class HeldTable {
  readonly writes: number[][] = [];
  failNext = 0;
  private release: (() => void)[] = [];

  write(values: readonly number[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('disk full'));
    }
    this.writes.push([...values]);
    return new Promise((resolve) => this.release.push(resolve));
  }

  /** Ends the oldest write in flight. */
  finishOne(): void {
    this.release.shift()?.();
  }

  get inFlight(): number {
    return this.release.length;
  }
}

const settle = () => new Promise((r) => setImmediate(r));

describe('WriteBehind: background writes, one at a time, merged while one is in flight', () => {
  it('writes the first batch at once and merges what comes meanwhile into the next write, in order', async () => {
    const table = new HeldTable();
    const w = new WriteBehind<number>(table, () => assert.fail('no error expected'));
    w.add([1, 2]);
    assert.deepEqual(table.writes, [[1, 2]], 'written at once');
    w.add([3]);
    w.add([4, 5]);
    w.add([]);
    assert.equal(table.inFlight, 1, 'one write at a time');
    assert.equal(w.backlog, 3);
    table.finishOne();
    await settle();
    assert.deepEqual(
      table.writes,
      [
        [1, 2],
        [3, 4, 5],
      ],
      'what came meanwhile, in one write',
    );
    const flushed = w.flush();
    let done = false;
    void flushed.then(() => {
      done = true;
    });
    await settle();
    assert.equal(done, false, 'flush waits for the write in flight');
    table.finishOne();
    await flushed;
    assert.equal(w.backlog, 0);
    w.add([6]);
    assert.deepEqual(table.writes.at(-1), [6], 'idle again: the next batch is written at once');
    table.finishOne();
    await w.flush();
  });

  it('a failed write keeps its rows, reports the error (to onError, to the caller once, to flush), and they go with the next attempt', async () => {
    const table = new HeldTable();
    const errors: unknown[] = [];
    const w = new WriteBehind<number>(table, (err) => errors.push(err));
    table.failNext = 1;
    w.add([1, 2]);
    await settle();
    assert.equal(errors.length, 1);
    assert.equal(w.backlog, 2, 'nothing dropped');
    table.failNext = 1;
    await assert.rejects(w.flush(), /disk full/);
    assert.equal(errors.length, 2);
    assert.match(String(w.takeFailure()), /disk full/, 'handed to the caller');
    assert.equal(w.takeFailure(), undefined, 'once');
    w.add([3]);
    assert.deepEqual(table.writes, [[1, 2, 3]], 'the kept rows first, then the new ones');
    table.finishOne();
    await w.flush();
    assert.equal(w.backlog, 0);
  });

  it('with spacingMs, what comes within it of the last write’s start waits and goes in one write; flush does not wait', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const table = new HeldTable();
    const w = new WriteBehind<number>(table, () => assert.fail('no error expected'), {
      spacingMs: 1_000,
      now: () => now,
    });
    w.add([1]);
    assert.deepEqual(table.writes, [[1]], 'the first at once');
    table.finishOne();
    await settle();
    w.add([2]);
    w.add([3]);
    await settle();
    now = 999;
    t.mock.timers.tick(999);
    await settle();
    assert.deepEqual(table.writes, [[1]], 'nothing before the spacing has passed');
    now = 1_000;
    t.mock.timers.tick(1);
    await settle();
    assert.deepEqual(table.writes, [[1], [2, 3]], 'then what came meanwhile, in one write');
    table.finishOne();
    await settle();
    w.add([4]);
    await settle();
    assert.equal(table.writes.length, 2, 'within the spacing again');
    const flushed = w.flush();
    await settle();
    assert.deepEqual(table.writes, [[1], [2, 3], [4]], 'a flush writes at once');
    w.add([5]);
    table.finishOne();
    await settle();
    assert.deepEqual(
      table.writes,
      [[1], [2, 3], [4], [5]],
      'and what comes during it, without waiting either',
    );
    table.finishOne();
    await flushed;
    assert.equal(w.backlog, 0);
  });
});
