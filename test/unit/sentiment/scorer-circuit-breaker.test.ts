import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { log } from '../../../src/core/log.ts';
import { metrics } from '../../../src/core/metrics.ts';
import type { Sentiment, SentimentBackend } from '../../../src/sentiment/labels.ts';
import { type ScoredText, SentimentScorer } from '../../../src/sentiment/scorer.ts';

/**
 * The scorer's clock and the timer of its per-text limit, moved by the test: the time a hung model costs is the
 * subject, so it is counted on this clock (20 s of it per time-out) instead of waited for.
 */
class TestClock {
  t = Date.parse('2026-12-07T08:00:00Z');
  private readonly timers: { at: number; ctrl: AbortController }[] = [];
  now = (): number => this.t;
  timeout = (ms: number): AbortSignal => {
    const ctrl = new AbortController();
    this.timers.push({ at: this.t + ms, ctrl });
    return ctrl.signal;
  };
  advance(ms: number): void {
    this.t += ms;
    for (const timer of this.timers.filter((x) => x.at <= this.t)) {
      this.timers.splice(this.timers.indexOf(timer), 1);
      timer.ctrl.abort(new DOMException('the limit passed', 'TimeoutError'));
    }
  }
}

/**
 * A local model whose native call hangs (it never answers, nor listens to the abort) until `hung` is cleared; then
 * it answers at once. `called` resolves at each call it does not answer.
 */
class HungModel implements SentimentBackend {
  readonly name = 'local:hung';
  readonly promptVersion = 'p1';
  readonly baseline = false;
  calls = 0;
  hung = true;
  private hangs = Promise.withResolvers<void>();
  get called(): Promise<void> {
    return this.hangs.promise;
  }
  score(): Promise<Sentiment> {
    this.calls++;
    if (!this.hung)
      return Promise.resolve({ label: 'positive', score: 0.7, confidence: 0.9, reason: 'the model' });
    this.hangs.resolve();
    this.hangs = Promise.withResolvers<void>();
    return new Promise<Sentiment>(() => {});
  }
}

const LIMIT_MS = 20_000;

/**
 * A model call that hangs (the local model's wedged native call) cost every text the scorer's whole limit: a backlog
 * or a replay stalled 20 s an item, for hours. The scorer's circuit breaker gives the texts to the lexicon at once
 * after 3 failures in a row, tries the model with one text a cool-down later, and closes when it answers.
 */
describe('scorer: a model that hangs opens the circuit', () => {
  // The test's timeout is only a guard: every wait is on a call or an answer, and the clock is the test's.
  it('a backlog pays the 20-s limit 3 times, not once per item; one probe after the cool-down; closed when the model answers', {
    timeout: 60_000,
  }, async (t) => {
    const warn = t.mock.method(log, 'warn', () => {});
    const info = t.mock.method(log, 'info', () => {});
    const clock = new TestClock();
    const model = new HungModel();
    const scorer = new SentimentScorer({
      primary: model,
      timeoutMs: LIMIT_MS,
      now: clock.now,
      timeoutSignal: clock.timeout,
      breakerThreshold: 3,
      breakerCooldownMs: 60_000,
    });
    const circuitOpen = async () =>
      (await metrics.sentimentCircuitOpen.get()).values.find((v) => v.labels.backend === 'local:hung')?.value;

    /** Scores one text; when the model is called and hangs, its limit passes on the clock. Returns what it cost. */
    const scoreOne = async (text: string): Promise<{ s: ScoredText; costMs: number }> => {
      const t0 = clock.t;
      // Taken before the call: the scorer may call the model before `score` returns.
      const hangs = model.called;
      const scoring = scorer.score(text);
      const first = await Promise.race([scoring.then(() => 'answered'), hangs.then(() => 'hangs')]);
      if (first === 'hangs') clock.advance(LIMIT_MS);
      return { s: await scoring, costMs: clock.t - t0 };
    };

    // A backlog of 40 items while the model hangs.
    const backlog: { s: ScoredText; costMs: number }[] = [];
    for (let i = 0; i < 40; i++) backlog.push(await scoreOne(`Bitcoin headline number ${i}`));
    assert.equal(
      backlog.reduce((sum, x) => sum + x.costMs, 0),
      3 * LIMIT_MS,
      'the backlog cost three limits, not one per item',
    );
    assert.equal(model.calls, 3, 'the model is asked until the circuit opens, then not at all');
    assert.ok(backlog.every((x) => x.s.baseline && x.s.model === 'lexicon:vader'));
    for (const x of backlog.slice(0, 3)) assert.match(x.s.fallback!, /^timeout: /);
    for (const x of backlog.slice(3)) {
      assert.match(
        x.s.fallback!,
        /^circuit-open: the model is tried again after 2026-12-07T08:02:00\.000Z; 3 calls of it in a row failed \(last: timeout: no answer in time\)$/,
      );
    }
    assert.equal(await circuitOpen(), 1);
    // Logs: one line per failed call (each cost the limit) and one when the circuit opened; none per short-circuited item.
    const opened = () =>
      warn.mock.calls
        .filter((c) => /circuit open/.test(String(c.arguments[1])))
        .map((c) => String(c.arguments[1]));
    assert.equal(warn.mock.callCount(), 4);
    assert.deepEqual(opened(), [
      'sentiment model local:hung failed 3 times in a row: circuit open, the baseline scores every text at once ' +
        'until 2026-12-07T08:02:00.000Z, then one text tries the model again',
    ]);

    // The cool-down passes (a minute after the circuit opened): one probe, which hangs too; a text scored meanwhile
    // does not wait for it. Then the circuit is open again.
    clock.advance(60_000);
    const probeHangs = model.called;
    const probing = scorer.score('Ether headline after the cool-down');
    assert.equal(
      await Promise.race([probeHangs.then(() => 'model called'), probing.then(() => 'answered without it')]),
      'model called',
      'the cool-down has passed: the model is tried',
    );
    const nextCall = model.called;
    const meanwhile = scorer.score('Ether headline while the probe is out');
    assert.equal(
      await Promise.race([nextCall.then(() => 'model called'), meanwhile.then(() => 'answered without it')]),
      'answered without it',
      'a text scored while the probe is out does not call the model',
    );
    assert.match((await meanwhile).fallback!, /^circuit-open: /);
    assert.equal(model.calls, 4, 'one probe');
    clock.advance(LIMIT_MS);
    assert.match((await probing).fallback!, /^timeout: /);
    const next = await scoreOne('Ether headline right after the probe');
    assert.equal(model.calls, 4, 'no second call within the new cool-down');
    assert.equal(next.costMs, 0);
    assert.match(
      next.s.fallback!,
      /^circuit-open: the model is tried again after 2026-12-07T08:03:20\.000Z; 4 calls of it in a row failed/,
    );
    assert.equal(warn.mock.callCount(), 5, 'the failed probe: one line');
    assert.match(String(warn.mock.calls[4]!.arguments[1]), /still fails .*until 2026-12-07T08:03:20\.000Z/);

    // The model answers again: after the cool-down the probe gets its answer and closes the circuit (one line).
    model.hung = false;
    clock.advance(60_000);
    const back = await scoreOne('Bitcoin headline once the model is back');
    assert.equal(back.s.baseline, false);
    assert.equal(back.s.model, 'local:hung');
    assert.equal(model.calls, 5);
    const after = await scoreOne('Bitcoin headline after that');
    assert.equal(after.s.baseline, false);
    assert.equal(model.calls, 6);
    assert.equal(await circuitOpen(), 0);
    const closed = info.mock.calls.filter((c) => /circuit closed/.test(String(c.arguments[1])));
    assert.equal(closed.length, 1);
    assert.equal(warn.mock.callCount(), 5);
  });
});
