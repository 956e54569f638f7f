import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RuleInput, RuleSchema } from '../../../../src/monitoring/alerts/rules.ts';
import { AlertStates, type Observation } from '../../../../src/monitoring/alerts/state.ts';

const S = 1_000;
const M = 60_000;
const rule = (o: Partial<RuleInput> = {}) =>
  RuleSchema.parse({
    name: 'r',
    kind: 'dead_letters',
    perMinute: 1,
    for: '2m',
    resolveAfter: '5m',
    repeatEvery: '1h',
    ...o,
  });

/**
 * Feeds one observation per step of a clock that the test moves; returns what was sent at each step. The wall clock
 * moves with the event clock (live), unless `wall` says where it is (a replay).
 */
function driver(r = rule()) {
  let wall = 0;
  const states = new AlertStates(() => wall);
  let now = 0;
  return {
    at: (t: number, active: boolean, wallAt = t) => {
      now = t;
      wall = wallAt;
      const o: Observation = {
        rule: r,
        key: 'all',
        active,
        value: active ? 5 : 0,
        message: active ? 'bad' : 'fine',
      };
      return states.update([o], now).map((n) => `${n.status}${n.repeat ? `#${n.repeat}` : ''}`);
    },
    states,
  };
}

describe('alert state machine (injected clock)', () => {
  it('fires once after holding for `for`, not before', () => {
    const d = driver();
    assert.deepEqual(d.at(0, true), []);
    assert.deepEqual(d.at(119 * S, true), []);
    assert.deepEqual(d.at(120 * S, true), ['firing']);
    assert.deepEqual(d.at(121 * S, true), []);
    assert.equal(d.states.active().length, 1);
  });

  it('a blip shorter than `for` sends nothing', () => {
    const d = driver();
    assert.deepEqual(d.at(0, true), []);
    assert.deepEqual(d.at(60 * S, false), []);
    assert.deepEqual(d.at(200 * S, false), []);
    assert.equal(d.states.active().length, 0);
  });

  it('repeats every `repeatEvery` while active', () => {
    const d = driver(rule({ for: 0, repeatEvery: '10m' }));
    assert.deepEqual(d.at(0, true), ['firing']);
    assert.deepEqual(d.at(9 * M, true), []);
    assert.deepEqual(d.at(10 * M, true), ['firing#1']);
    assert.deepEqual(d.at(20 * M, true), ['firing#2']);
  });

  it('a replay (event clock far ahead of the wall clock): fires and resolves on event time, reminds on neither alone', () => {
    const d = driver(rule({ for: 0, resolveAfter: '5m', repeatEvery: '1h' }));
    // A day of events in 18 s of wall time: one firing, no reminder (it sent 23 before).
    const sent: string[] = [];
    for (let i = 0; i <= 24 * 60; i++) sent.push(...d.at(i * M, true, (i * 18 * S) / (24 * 60)));
    assert.deepEqual(sent, ['firing']);
    // An hour of wall time later, and an hour of events: the reminder.
    assert.deepEqual(d.at(25 * 60 * M, true, 18 * S + 60 * M), ['firing#1']);
    // Wall time alone does not remind either (a paused replay): the event clock must have moved an hour too.
    assert.deepEqual(d.at(25 * 60 * M + M, true, 18 * S + 3 * 60 * M), []);
    // Resolving stays on event time.
    assert.deepEqual(d.at(25 * 60 * M + 2 * M, false, 18 * S + 3 * 60 * M), []);
    assert.deepEqual(d.at(25 * 60 * M + 7 * M, false, 18 * S + 3 * 60 * M), ['resolved']);
  });

  it('resolves once, after staying clear for `resolveAfter` (hold-down)', () => {
    const d = driver(rule({ for: 0 }));
    d.at(0, true);
    assert.deepEqual(d.at(1 * M, false), []);
    assert.deepEqual(d.at(5 * M + 59 * S, false), []);
    assert.deepEqual(d.at(6 * M, false), ['resolved']);
    assert.deepEqual(d.at(7 * M, false), []);
    assert.equal(d.states.active().length, 0);
  });

  it('flapping input: one firing, no resolve/fire pair per flap, one resolve at the end', () => {
    const d = driver(rule({ for: 0, resolveAfter: '5m', repeatEvery: '1h' }));
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) sent.push(...d.at(i * M, i % 2 === 0)); // on, off, on, off… every minute
    assert.deepEqual(sent, ['firing']);
    for (let i = 30; i < 40; i++) sent.push(...d.at(i * M, false));
    assert.deepEqual(sent, ['firing', 'resolved']);
  });

  it('a series that stops being reported resolves like a clear one', () => {
    const states = new AlertStates();
    const r = rule({ for: 0, resolveAfter: 0 });
    states.update([{ rule: r, key: 'BTC/USD', active: true, value: 1, message: 'x' }], 0);
    const out = states.update([], M);
    assert.deepEqual(
      out.map((n) => [n.status, n.key]),
      [['resolved', 'BTC/USD']],
    );
  });

  it('the resolved message keeps when the alert started', () => {
    const states = new AlertStates();
    const r = rule({ for: 0, resolveAfter: 0 });
    states.update([{ rule: r, key: 'all', active: true, value: 1, message: 'x' }], 1_000);
    const [n] = states.update([{ rule: r, key: 'all', active: false, value: 0, message: 'ok' }], 9_000);
    assert.deepEqual([n!.status, n!.startsAt, n!.at], ['resolved', 1_000, 9_000]);
  });

  it('a replay: dead letters (counted per wall minute) hold and clear on the wall clock, not on event time', () => {
    let wall = 0;
    const states = new AlertStates(() => wall);
    const o = (active: boolean): Observation => ({
      rule: rule({ for: '2m', resolveAfter: '5m' }),
      key: 'all',
      active,
      value: active ? 11 : 0,
      message: active ? 'bad' : 'fine',
    });
    // A burst seen by every evaluation of a batch spanning three hours of events, within one wall second: no firing.
    const sent: string[] = [];
    for (let i = 0; i <= 180; i++) sent.push(...states.update([o(true)], i * M, false).map((n) => n.status));
    assert.deepEqual(sent, []);
    // Held for two minutes of wall time: it fires; clear for five: it resolves.
    wall = 2 * M;
    assert.deepEqual(
      states.update([o(true)], 200 * M, false).map((n) => n.status),
      ['firing'],
    );
    wall = 3 * M;
    assert.deepEqual(states.update([o(false)], 300 * M, false), []);
    wall = 8 * M;
    assert.deepEqual(
      states.update([o(false)], 301 * M, false).map((n) => n.status),
      ['resolved'],
    );
  });

  it('nextDeadline: a reminder due on the event clock, held back by the wall clock, is due at once when the wall clock lets it go', () => {
    // A replay: fired at event 0 (wall 0), the reminder is due at event 1 h. At event 2 h, the wall clock 18 s on: held
    // back, and not counted (the wall clock stands still while a batch is caught up on). An hour of wall time later it
    // is due at once, at the last evaluation's time (the next one on the cadence sends it): before, it was not counted,
    // and went with whatever evaluation came next — a window's change hours of event time later across a gap.
    let wall = 0;
    const states = new AlertStates(() => wall);
    const o: Observation = {
      rule: RuleSchema.parse({ name: 'worse', kind: 'skill_below', window: '24h', repeatEvery: '1h' }),
      key: 'BTC/USD',
      active: true,
      value: -0.1,
      message: 'bad',
    };
    const at = (t: number) => states.update([o], t, false).map((n) => `${n.status}#${n.repeat}`);
    assert.deepEqual(at(0), ['firing#0']);
    assert.equal(states.nextDeadline(30 * M, false), 60 * M);
    wall = 18 * S;
    assert.deepEqual(at(120 * M), []);
    assert.equal(states.nextDeadline(120 * M, false), Number.POSITIVE_INFINITY);
    wall = 60 * M + 18 * S;
    assert.equal(states.nextDeadline(120 * M, false), 120 * M);
    assert.deepEqual(at(120 * M + 15 * S), ['firing#1']);
    assert.equal(states.nextDeadline(120 * M + 15 * S, false), 180 * M + 15 * S);
  });
});
