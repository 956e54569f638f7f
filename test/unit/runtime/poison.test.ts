import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failsTheSameWay, InvalidValueError, PoisonGuard } from '../../../src/runtime/poison.ts';

describe('PoisonGuard: a record the handler can never take', () => {
  const bug = () => new TypeError("Cannot read properties of undefined (reading 'x')");

  it('narrows a span that fails the same way 3 times down to single records, then quarantines the one that fails', () => {
    const g = new PoisonGuard();
    assert.equal(g.chunkSize(0n, 100), 100);
    for (let i = 0; i < 2; i++) g.failed(bug(), 0n, 100, 100n);
    assert.equal(g.chunkSize(0n, 100), 100, 'two failures: not yet');
    g.failed(bug(), 0n, 100, 100n);
    assert.equal(g.chunkSize(0n, 100), 1, 'narrowed');
    assert.equal(g.chunkSize(99n, 100), 1);
    assert.equal(g.chunkSize(100n, 100), 100, 'past the failing span: full size');
    // Records 0..41 pass one at a time; 42 fails three times (each time re-read from the commit).
    for (let n = 0; n < 3; n++) {
      for (let o = 0n; o < 42n; o++) g.handled(o + 1n);
      assert.equal(g.isQuarantined(42n), false);
      assert.equal(g.failed(bug(), 42n, 1, 43n), n === 2 ? 'quarantined' : undefined);
    }
    assert.equal(g.isQuarantined(42n), true);
    assert.match(g.deadLetterReason(42n)!, /failed 3 times on this record alone: TypeError: Cannot read/);
    g.deadLetterSent(42n);
    assert.equal(g.deadLetterReason(42n), undefined, 'dead-lettered once');
    assert.equal(g.isQuarantined(42n), true, 'still never handed over again');
    g.handled(100n);
    assert.equal(g.chunkSize(100n, 100), 100);
  });

  it('a stage that commits behind: successes re-read before the failing span do not reset it, and only the span is narrowed', () => {
    const g = new PoisonGuard();
    for (let i = 0; i < 3; i++) {
      // Re-read from the commit at 0: chunks 0..499 pass, then 500..599 fails.
      for (let o = 100n; o <= 500n; o += 100n) g.handled(o);
      g.failed(bug(), 500n, 100, 600n);
    }
    assert.equal(g.chunkSize(0n, 100), 100, 'full chunks before the span');
    assert.equal(g.chunkSize(450n, 100), 50, 'a chunk ends where the span starts');
    assert.equal(g.chunkSize(500n, 100), 1, 'one at a time through it');
    assert.equal(g.chunkSize(600n, 100), 100);
  });

  it('keeps only what every failure had in hand when chunk boundaries move between re-reads', () => {
    const g = new PoisonGuard();
    g.failed(bug(), 500n, 100, 600n);
    g.failed(bug(), 520n, 100, 620n);
    g.failed(bug(), 480n, 100, 580n);
    assert.equal(g.chunkSize(519n, 100), 1);
    assert.equal(g.chunkSize(400n, 100), 100);
    assert.equal(g.chunkSize(510n, 100), 10, 'up to the span [520, 580)');
    assert.equal(g.chunkSize(580n, 100), 100);
  });

  it('bad records in a row are quarantined one by one, up to stateAfter; one more in a row is the handler’s state: it holds', () => {
    const g = new PoisonGuard(); // the defaults: stateAfter 10
    for (let i = 0; i < 3; i++) g.failed(bug(), 0n, 32, 32n);
    const failAlone = (at: bigint) => {
      for (let i = 0; i < 2; i++) assert.equal(g.failed(bug(), at, 1, at + 1n), undefined, `${at}: not yet`);
      return g.failed(bug(), at, 1, at + 1n);
    };
    for (let at = 10n; at < 20n; at++) assert.equal(failAlone(at), 'quarantined', `record ${at}, in a row`);
    assert.equal(g.failed(bug(), 20n, 1, 21n), 'state', 'the 11th in a row: the state, not the records');
    for (let i = 0; i < 5; i++) assert.equal(g.failed(bug(), 20n, 1, 21n), undefined);
    assert.equal(g.isQuarantined(20n), false, 'held, not quarantined');
    assert.equal(g.remembered, 10);
  });

  it('with stateAfter 1 the record right after a quarantined one that fails the same way means state', () => {
    const g = new PoisonGuard({ narrowAfter: 3, quarantineAfter: 3, stateAfter: 1 });
    for (let i = 0; i < 3; i++) g.failed(bug(), 0n, 16, 16n);
    for (let i = 0; i < 3; i++) g.failed(bug(), 10n, 1, 11n);
    assert.equal(g.isQuarantined(10n), true);
    assert.equal(g.failed(bug(), 11n, 1, 12n), 'state');
  });

  it('a run counts only the same message: another failure in a row starts a run of its own', () => {
    const g = new PoisonGuard({ narrowAfter: 3, quarantineAfter: 3, stateAfter: 1 });
    const other = () => new RangeError('Invalid array length');
    for (let i = 0; i < 3; i++) g.failed(bug(), 0n, 16, 16n);
    for (let i = 0; i < 3; i++) g.failed(bug(), 10n, 1, 11n);
    for (let i = 0; i < 2; i++) assert.equal(g.failed(other(), 11n, 1, 12n), undefined);
    assert.equal(g.failed(other(), 11n, 1, 12n), 'quarantined');
    assert.equal(g.failed(other(), 12n, 1, 13n), 'state');
  });

  it('a record that fails the same way later, after others went through, is quarantined too (not a state fault)', () => {
    const g = new PoisonGuard();
    const quarantine = (at: bigint) => {
      for (let i = 0; i < 3; i++) g.failed(bug(), at, 16, at + 16n);
      for (let i = 0; i < 2; i++) assert.equal(g.failed(bug(), at, 1, at + 1n), undefined);
      return g.failed(bug(), at, 1, at + 1n);
    };
    assert.equal(quarantine(10n), 'quarantined');
    g.handled(11n); // the quarantined record's own chunk: nothing else yet
    g.handled(12n); // the record after it went through
    g.handled(26n);
    assert.equal(quarantine(500n), 'quarantined', 'a second poison record, far behind the first');
    assert.equal(g.isQuarantined(500n), true);
  });

  it('forgets a quarantined record once the partition has committed past it, not before', () => {
    const g = new PoisonGuard();
    for (let i = 0; i < 3; i++) g.failed(bug(), 0n, 16, 16n);
    for (let i = 0; i < 3; i++) g.failed(bug(), 10n, 1, 11n);
    assert.equal(g.isQuarantined(10n), true);
    g.committed(10n);
    assert.equal(
      g.isQuarantined(10n),
      true,
      'a commit at the record itself: it is read again after a failure',
    );
    g.committed(11n);
    assert.equal(g.isQuarantined(10n), false);
    assert.equal(g.remembered, 0);
  });

  it('never quarantines on a failure that waiting can mend, however often', () => {
    const g = new PoisonGuard();
    const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    for (let i = 0; i < 50; i++) g.failed(outage, 0n, 100, 100n);
    assert.equal(g.chunkSize(0n, 100), 100);
  });

  it('a dependency failure in between resets the count', () => {
    const g = new PoisonGuard();
    g.failed(bug(), 0n, 10, 10n);
    g.failed(bug(), 0n, 10, 10n);
    g.failed(new Error('store unavailable'), 0n, 10, 10n);
    g.failed(bug(), 0n, 10, 10n);
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
    assert.equal(failsTheSameWay(new SyntaxError('Unexpected token < in JSON')), false, 'a proxy page');
    assert.equal(failsTheSameWay(new TypeError('fetch failed')), false);
    assert.equal(failsTheSameWay(new TypeError('terminated')), false, 'a body cut off mid-read');
    const socket = (code: string) =>
      new TypeError('boom', { cause: Object.assign(new Error('other side closed'), { code }) });
    for (const code of ['ECONNRESET', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE'])
      assert.equal(failsTheSameWay(socket(code)), false, code);
    assert.equal(failsTheSameWay('a string'), false);
  });
});
