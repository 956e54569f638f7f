import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type RunResult, TrainerService } from '../../../src/training/trainer-service.ts';

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
    finish: (i: number, r: RunResult | Error) => finishers[i]!(r),
    maxActive: () => maxActive,
  };
}

describe('trainer service', () => {
  it('runs at start, then every interval after the previous run ended, never two at once', async () => {
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 30 });
    svc.start();
    await sleep(10);
    assert.deepEqual(c.started, ['schedule']);
    await sleep(60); // a long run: the schedule waits for it
    assert.equal(c.started.length, 1);
    c.finish(0, { version: 1, promoted: true });
    await sleep(10);
    assert.equal(c.started.length, 1, 'the next run waits a full interval after the end of the previous one');
    await sleep(40);
    assert.equal(c.started.length, 2);
    c.finish(1, { version: 2, promoted: false });
    await svc.stop();
    assert.equal(c.maxActive(), 1);
    assert.equal(svc.stats.runs, 2);
    assert.equal(svc.stats.promoted, 1);
    assert.equal(svc.stats.lastVersion, 2);
  });

  it('runs on demand at once, and queues exactly one more when asked during a run', async () => {
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 60_000, startDelayMs: 60_000 });
    svc.start();
    svc.requestNow('signal');
    await sleep(5);
    assert.deepEqual(c.started, ['signal']);
    svc.requestNow('again');
    svc.requestNow('and again');
    c.finish(0, { version: 1, promoted: true });
    await sleep(5);
    assert.deepEqual(c.started, ['signal', 'on demand']);
    c.finish(1, { version: 2, promoted: true });
    await sleep(5);
    assert.equal(c.started.length, 2, 'no third run: requests during a run collapse into one');
    await svc.stop();
  });

  it('keeps going after a failed run and reports it', async () => {
    const c = controlledRetrain();
    const errors: string[] = [];
    const svc = new TrainerService(c.retrain, { everyMs: 10, onError: (e) => errors.push(e.message) });
    svc.start();
    await sleep(5);
    c.finish(0, new Error('trainer exited 1'));
    await sleep(30);
    assert.equal(c.started.length, 2);
    c.finish(1, { version: 3, promoted: false });
    await svc.stop();
    assert.deepEqual(errors, ['trainer exited 1']);
    assert.equal(svc.stats.failed, 1);
    assert.equal(svc.stats.runs, 1);
    assert.equal(svc.stats.lastError, null);
  });

  it('stop() waits for the run in progress and schedules nothing after it', async () => {
    const c = controlledRetrain();
    const svc = new TrainerService(c.retrain, { everyMs: 1 });
    svc.start();
    await sleep(5);
    const stopping = svc.stop();
    let stopped = false;
    void stopping.then(() => {
      stopped = true;
    });
    await sleep(5);
    assert.equal(stopped, false, 'stop waits for the run');
    c.finish(0, { version: 1, promoted: true });
    await stopping;
    await sleep(10);
    assert.equal(c.started.length, 1);
  });
});
