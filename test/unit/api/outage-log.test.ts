import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { OutageLog } from '../../../src/api/outage-log.ts';
import { buildApi } from '../../../src/api/server.ts';
import { redirectLogLines } from '../../../src/core/log.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';

interface Line {
  level: number;
  msg: string;
  err?: { stack?: string };
  failed?: number;
}

/** An OutageLog writing to `lines`, on a clock the test moves. */
function outageLog(intervalMs = 60_000) {
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const clock = { now: 0 };
  const outage = new OutageLog({ what: 'predictions store', logger, intervalMs, now: () => clock.now });
  return { lines, clock, outage };
}

test('an outage is logged once with its stack, then once per interval with the count, then once when it ends', () => {
  const { lines, clock, outage } = outageLog();
  for (let i = 0; i < 100; i++) {
    clock.now = i * 10; // a client polling 100 times a second
    outage.failed(new Error('connection refused'));
  }
  assert.equal(lines.length, 1, 'one line for the first second of an outage');
  assert.equal(lines[0]!.level, 50);
  assert.match(lines[0]!.err?.stack ?? '', /connection refused/);
  clock.now = 59_999;
  outage.failed(new Error('connection refused'));
  assert.equal(lines.length, 1, 'nothing more within the interval');
  clock.now = 60_000;
  outage.failed(new Error('connection refused'));
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.failed, 101, 'every failure since the first line, this one included');
  assert.equal(lines[1]!.err, undefined, 'no stack again');
  assert.match(lines[1]!.msg, /predictions store still failing: 101 reads failed in the last 60 s/);
  clock.now = 61_000;
  outage.failed(new Error('connection refused'));
  clock.now = 70_000;
  outage.answered();
  assert.equal(lines.length, 3);
  assert.equal(lines[2]!.level, 30);
  assert.match(lines[2]!.msg, /predictions store answering again/);
  assert.equal(lines[2]!.failed, 1, 'the failures no line has told yet');
  outage.answered();
  assert.equal(lines.length, 3, 'a store that answers says so once');
  // The next outage starts over: its first failure is logged with its stack.
  outage.failed(new Error('too many connections'));
  assert.equal(lines.length, 4);
  assert.match(lines[3]!.err?.stack ?? '', /too many connections/);
});

// Every request that read a failing store logged an error with its stack: a client polling 100 times a second during
// an outage wrote 100 stack traces a second.
test('a failing store: the API logs its first failure, not one per request; once it answers again, a new failure is logged', async () => {
  const store = new MemoryPredictionsStore();
  const latest = new LatestPredictions();
  latest.markReady();
  const app = buildApi({ latest, store });
  const lines: Line[] = [];
  redirectLogLines((l) => lines.push(JSON.parse(l)));
  try {
    store.failing = true;
    for (let i = 0; i < 100; i++) {
      const r = await app.inject('/v1/predictions?pair=BTC-USD');
      assert.equal(r.statusCode, 503);
      assert.equal(r.json().error, 'store_unavailable');
    }
    const errors = () => lines.filter((l) => l.level >= 50);
    assert.equal(
      errors().length,
      1,
      `error lines: ${errors()
        .map((l) => l.msg)
        .slice(0, 3)}…`,
    );
    assert.match(errors()[0]!.err?.stack ?? '', /store unavailable \(test\)/);
    store.failing = false;
    assert.equal((await app.inject('/v1/predictions?pair=BTC-USD')).statusCode, 200);
    store.failing = true;
    assert.equal((await app.inject('/v1/predictions?pair=BTC-USD')).statusCode, 503);
    assert.equal(errors().length, 2, 'a new outage is logged with its stack');
    assert.ok(errors()[1]!.err?.stack);
  } finally {
    redirectLogLines(undefined);
    await app.close();
  }
});
