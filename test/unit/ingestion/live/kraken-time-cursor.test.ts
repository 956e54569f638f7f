import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KrakenTimeCursor } from '../../../../src/ingestion/live/kraken-time-cursor.ts';

describe('KrakenTimeCursor: paging Trades by time without losing trades that share an instant', () => {
  it('asks 1 ns before the cursor (the epoch as it is), and goes on while pages bring new trades', () => {
    const c = new KrakenTimeCursor();
    assert.equal(c.since('1700000000000000000'), '1699999999999999999');
    assert.equal(c.since('0'), '0');
    assert.equal(c.after(1000, 999), 'next');
    assert.equal(c.steppedPastFullInstant, false);
    assert.equal(c.since('1700000000500000000'), '1700000000499999999');
  });

  it('a page with nothing new is asked past its instant once; nothing there is the end', () => {
    const c = new KrakenTimeCursor();
    assert.equal(c.after(3, 0), 'again');
    assert.equal(c.since('1700000000000000000'), '1700000000000000000');
    assert.equal(c.after(0, 0), 'end');
  });

  it('new trades past a full instant: go on, say that the instant filled a page, and ask 1 ns before again', () => {
    const c = new KrakenTimeCursor();
    assert.equal(c.after(1000, 0), 'again');
    assert.equal(c.after(1000, 1000), 'next');
    assert.equal(c.steppedPastFullInstant, true);
    assert.equal(c.since('1700000000000000005'), '1700000000000000004');
    assert.equal(c.after(10, 10), 'next');
    assert.equal(c.steppedPastFullInstant, false);
  });

  it('the same page again after asking past it (only re-sent trades) is the end, and an empty page always is', () => {
    const c = new KrakenTimeCursor();
    assert.equal(c.after(5, 0), 'again');
    assert.equal(c.after(5, 0), 'end');
    assert.equal(new KrakenTimeCursor().after(0, 0), 'end');
  });
});
