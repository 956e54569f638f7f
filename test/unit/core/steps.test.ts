import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInTurns, runToEnd, type Steps } from '../../../src/core/steps.ts';

/** Counts its steps in `done`; returns their number. */
function* counting(n: number, done: { steps: number }): Steps<number> {
  for (let i = 0; i < n; i++) {
    done.steps++;
    yield;
  }
  return n;
}

describe('steps: one body, run at once or in turns of the event loop', () => {
  it('runToEnd and runInTurns give the same value', async () => {
    assert.equal(runToEnd(counting(1_000, { steps: 0 })), 1_000);
    assert.equal(await runInTurns(counting(1_000, { steps: 0 }), undefined, 0), 1_000);
  });

  it('runInTurns lets the event loop turn between slices: a timer fires while it computes', async () => {
    let fired = false;
    setImmediate(() => {
      fired = true;
    });
    const seenByStep: boolean[] = [];
    function* watching(): Steps<void> {
      for (let i = 0; i < 5; i++) {
        seenByStep.push(fired);
        yield;
      }
    }
    await runInTurns(watching(), undefined, 0);
    assert.equal(seenByStep[0], false);
    assert.equal(seenByStep.at(-1), true, 'the immediate ran between two steps');
  });

  it('an abort is heard at the next turn: not one slice more, rejected with the signal’s reason', async () => {
    const stop = new AbortController();
    const done = { steps: 0 };
    setImmediate(() => stop.abort());
    await assert.rejects(runInTurns(counting(1_000_000, done), stop.signal, 0), { name: 'AbortError' });
    assert.ok(done.steps < 10, `stopped after ${done.steps} steps`);
    // Aborted before it starts: no step at all.
    const none = { steps: 0 };
    await assert.rejects(runInTurns(counting(10, none), stop.signal), { name: 'AbortError' });
    assert.equal(none.steps, 0);
  });
});
