import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failsTheSameWay, InvalidValueError, PoisonGuard } from '../../../src/runtime/poison.ts';

describe('PoisonGuard: a record the handler can never take', () => {
  const bug = () => new TypeError("Cannot read properties of undefined (reading 'x')");

  it('narrows a chunk that fails the same way 3 times down to single records, then quarantines the one that fails', () => {
    const g = new PoisonGuard();
    assert.equal(g.chunkSize(0n, 100), 100);
    for (let i = 0; i < 2; i++) g.failed(bug(), 0n, 100n);
    assert.equal(g.chunkSize(0n, 100), 100, 'two failures: not yet');
    g.failed(bug(), 0n, 100n);
    assert.equal(g.chunkSize(0n, 100), 1, 'narrowed');
    assert.equal(g.chunkSize(99n, 100), 1);
    assert.equal(g.chunkSize(100n, 100), 100, 'past the failing chunk: full size');
    // Records 0..41 pass one at a time; 42 fails three times (each time re-read from the commit).
    for (let n = 0; n < 3; n++) {
      for (let o = 0n; o < 42n; o++) g.handled(o + 1n);
      assert.equal(g.isQuarantined(42n), false);
      g.failed(bug(), 42n, 43n);
    }
    assert.equal(g.isQuarantined(42n), true);
    assert.match(g.deadLetterReason(42n)!, /failed 3 times on this record alone: TypeError: Cannot read/);
    g.deadLetterSent(42n);
    assert.equal(g.deadLetterReason(42n), undefined, 'dead-lettered once');
    assert.equal(g.isQuarantined(42n), true, 'still never handed over again');
    g.handled(100n);
    assert.equal(g.chunkSize(100n, 100), 100);
  });

  it('never quarantines on a failure that waiting can mend, however often', () => {
    const g = new PoisonGuard();
    const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    for (let i = 0; i < 50; i++) g.failed(outage, 0n, 100n);
    assert.equal(g.chunkSize(0n, 100), 100);
    for (let i = 0; i < 50; i++) g.failed(outage, 7n, 8n);
    assert.equal(g.isQuarantined(7n), false);
  });

  it('a dependency failure in between resets the count', () => {
    const g = new PoisonGuard();
    g.failed(bug(), 0n, 10n);
    g.failed(bug(), 0n, 10n);
    g.failed(new Error('store unavailable'), 0n, 10n);
    g.failed(bug(), 0n, 10n);
    assert.equal(g.chunkSize(0n, 10), 10);
  });

  it('tells code failing on a value from the network', () => {
    assert.equal(failsTheSameWay(bug()), true);
    assert.equal(failsTheSameWay(new RangeError('Invalid array length')), true);
    assert.equal(
      failsTheSameWay(new InvalidValueError('publish to candles: invalid value: close: NaN')),
      true,
    );
    assert.equal(failsTheSameWay(new Error('store unavailable')), false);
    assert.equal(failsTheSameWay(new TypeError('fetch failed')), false);
    const wrapped = new TypeError('terminated', {
      cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    });
    assert.equal(failsTheSameWay(wrapped), false);
    assert.equal(failsTheSameWay('a string'), false);
  });
});
