import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { type RunResult, TrainerService } from '../../../src/training/trainer-service.ts';

/**
 * Time is the subject here (a schedule), so the clock is node:test's mock timers, not the wall clock: the test
 * moves time by hand with `tick`, and a loaded machine cannot make a run start early or late.
 */
function mockClock(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  return {
    /** Advances the mock clock and lets every callback and promise chain it triggered settle. */
    async tick(ms: number) {
      t.mock.timers.tick(ms);
      await settle();
    },
  };
}

/** Lets every pending promise chain run (setImmediate is not mocked and runs after all pending microtasks). */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A retrain function whose runs the test finishes by hand, recording when each started. */
function controlledRetrain() {
  const started: string[] = [];
  const finishers: ((r: RunResult | Error) => void)[] = [];
  let active = 0;
  let maxActive = 0;
  const retrain = (reason: string) =>
    new Promise<RunResult>((ok, fail) => {
      started.push(reason);
      active++;
      maxActive = Math.max(maxActive, active);
      finishers.push((r) => {
        active--;
        r instanceof Error ? fail(r) : ok(r);
      });
    });
  return {
    retrain,
    started,
    /** Ends run `i` and lets the service react to its end. */
    finish: async (i: number, r: RunResult | Error) => {
      finishers[i]!(r);
      await settle();
    },
    maxActive: () => maxActive,
  };
}

describe('trainer service', () => {
  it('runs at start, then every interval after the previous run ended, never two at once', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 30 });
    svc.start();
    await clock.tick(0);
    assert.deepEqual(c.started, ['schedule']);
    await clock.tick(60); // a long run, two intervals: the schedule waits for it
    assert.equal(c.started.length, 1);
    await c.finish(0, { version: 1, promoted: true });
    await clock.tick(29);
    assert.equal(c.started.length, 1, 'the next run waits a full interval after the end of the previous one');
    await clock.tick(1);
    assert.equal(c.started.length, 2);
    await c.finish(1, { version: 2, promoted: false });
    await svc.stop();
    assert.equal(c.maxActive(), 1);
    assert.equal(svc.stats.runs, 2);
    assert.equal(svc.stats.promoted, 1);
    assert.equal(svc.stats.lastVersion, 2);
  });

  it('runs on demand at once, and queues exactly one more when asked during a run', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 60_000, startDelayMs: 60_000 });
    svc.start();
    svc.requestNow('signal');
    await clock.tick(0);
    assert.deepEqual(c.started, ['signal']);
    svc.requestNow('again');
    svc.requestNow('and again');
    await c.finish(0, { version: 1, promoted: true });
    await clock.tick(0);
    assert.deepEqual(c.started, ['signal', 'on demand']);
    await c.finish(1, { version: 2, promoted: true });
    await clock.tick(59_999);
    assert.equal(c.started.length, 2, 'no third run: requests during a run collapse into one');
    await clock.tick(1);
    assert.deepEqual(c.started, ['signal', 'on demand', 'schedule'], 'then the schedule goes on');
    await c.finish(2, { version: 3, promoted: false });
    await svc.stop();
  });

  it('keeps going after a failed run and reports it', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const errors: string[] = [];
    const svc = new TrainerService(c.retrain, { everyMs: 10, onError: (e) => errors.push(e.message) });
    svc.start();
    await clock.tick(0);
    await c.finish(0, new Error('trainer exited 1'));
    await clock.tick(9);
    assert.equal(c.started.length, 1);
    await clock.tick(1);
    assert.equal(c.started.length, 2, 'the schedule goes on after a failure');
    await c.finish(1, { version: 3, promoted: false });
    await svc.stop();
    assert.deepEqual(errors, ['trainer exited 1']);
    assert.equal(svc.stats.failed, 1);
    assert.equal(svc.stats.runs, 1);
    assert.equal(svc.stats.lastError, null);
  });

  it('stop() waits for the run in progress and schedules nothing after it', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 1 });
    svc.start();
    await clock.tick(0);
    assert.equal(c.started.length, 1);
    const stopping = svc.stop();
    let stopped = false;
    void stopping.then(() => {
      stopped = true;
    });
    await clock.tick(100);
    assert.equal(stopped, false, 'stop waits for the run');
    await c.finish(0, { version: 1, promoted: true });
    await stopping;
    await clock.tick(100); // a hundred intervals later: nothing was scheduled after the stop
    assert.equal(c.started.length, 1);
  });

  it('a restart does not retrain at once: the first run waits until --every after the newest registered version', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const DAY = 86_400_000;
    // The trainer registered a version two days ago, then crashed and is starting again.
    const svc = new TrainerService(c.retrain, { everyMs: 7 * DAY, lastRegisteredAt: Date.now() - 2 * DAY });
    assert.equal(svc.firstRunDelayMs(), 5 * DAY);
    svc.start();
    assert.equal(svc.stats.nextRunAt, Date.now() + 5 * DAY);
    await clock.tick(0);
    await clock.tick(5 * DAY - 1);
    assert.equal(c.started.length, 0, 'no run before seven days after the last registration');
    await clock.tick(1);
    assert.deepEqual(c.started, ['schedule']);
    await c.finish(0, { version: 2, promoted: true });
    await svc.stop();
  });

  it('waits longer than setTimeout can (--every 30d) in steps, never firing early', async (t) => {
    const clock = mockClock(t);
    // Every delay handed to setTimeout, which fires at once past 2^31 - 1 ms (about 24.8 days) on a real clock.
    const delays: number[] = [];
    const mocked = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return mocked(fn, ms);
    }) as typeof setTimeout;
    t.after(() => {
      globalThis.setTimeout = mocked;
    });
    const c = controlledRetrain();
    const DAY = 86_400_000;
    const svc = new TrainerService(c.retrain, { everyMs: 30 * DAY, lastRegisteredAt: Date.now() });
    svc.start();
    await clock.tick(0);
    await clock.tick(30 * DAY - 1);
    assert.equal(c.started.length, 0, 'not before the 30 days');
    await clock.tick(1);
    assert.deepEqual(c.started, ['schedule']);
    assert.ok(Math.max(...delays) <= 2 ** 31 - 1, `a delay of ${Math.max(...delays)} ms`);
    await c.finish(0, { version: 2, promoted: true });
    await svc.stop();
  });

  it('runs at once when the newest registered version is older than --every', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 60_000, lastRegisteredAt: Date.now() - 60_001 });
    assert.equal(svc.firstRunDelayMs(), 0);
    svc.start();
    await clock.tick(0);
    assert.deepEqual(c.started, ['schedule']);
    await c.finish(0, { version: 2, promoted: true });
    await svc.stop();
  });
  it('a failed run is tried again soon, with back-off, not a whole --every later (then the schedule resumes)', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const DAY = 86_400_000;
    const MIN = 60_000;
    const svc = new TrainerService(c.retrain, { everyMs: 7 * DAY, retryAfterFailureMs: 10 * MIN });
    svc.start();
    await clock.tick(0);
    // The weekly run meets the feature store restarting: without a retry the champion went a second week unrefreshed.
    await c.finish(0, new Error('the feature store is unreachable'));
    assert.equal(svc.stats.nextRunAt, Date.now() + 10 * MIN);
    await clock.tick(10 * MIN - 1);
    assert.equal(c.started.length, 1);
    await clock.tick(1);
    assert.equal(c.started.length, 2, 'tried again 10 minutes after the failure');
    await c.finish(1, new Error('the feature store is unreachable'));
    await clock.tick(20 * MIN - 1);
    assert.equal(c.started.length, 2, 'the wait doubles: a lasting failure does not spin');
    await clock.tick(1);
    assert.equal(c.started.length, 3);
    await c.finish(2, { version: 2, promoted: true });
    await clock.tick(7 * DAY - 1);
    assert.equal(c.started.length, 3, 'after a success, the schedule is --every again');
    await clock.tick(1);
    assert.equal(c.started.length, 4);
    await c.finish(3, new Error('bad data'));
    assert.equal(svc.stats.nextRunAt, Date.now() + 10 * MIN, 'the back-off starts again after a success');
    await svc.stop();
  });

  it('the wait after failures never exceeds --every', async (t) => {
    const clock = mockClock(t);
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 60 * 60_000, retryAfterFailureMs: 25 * 60_000 });
    svc.start();
    await clock.tick(0);
    await c.finish(0, new Error('down'));
    assert.equal(svc.stats.nextRunAt, Date.now() + 25 * 60_000);
    await clock.tick(25 * 60_000);
    await c.finish(1, new Error('down'));
    assert.equal(svc.stats.nextRunAt, Date.now() + 50 * 60_000);
    await clock.tick(50 * 60_000);
    await c.finish(2, new Error('down'));
    assert.equal(svc.stats.nextRunAt, Date.now() + 60 * 60_000, 'capped at --every');
    await svc.stop();
  });
});
