import type { Rule } from './rules.ts';

/** One evaluation of a rule for one series (a pair, or `all` for whole-system rules). */
export interface Observation {
  rule: Rule;
  /** The series: a pair, or `all`. */
  key: string;
  /** Whether the rule's condition holds now. */
  active: boolean;
  /** The value compared (skill, MAE, minutes, records…), for the message. */
  value: number | null;
  /** One sentence saying what is wrong (or right), with the value and the threshold. */
  message: string;
}

/** The topic's schema describes the same shape (src/schemas/alert.ts). */
export interface Notification {
  status: 'firing' | 'resolved';
  rule: string;
  kind: Rule['kind'];
  severity: Rule['severity'];
  key: string;
  value: number | null;
  message: string;
  /** When the condition started to hold (firing) — kept on the resolved message too. */
  startsAt: number;
  /** When this notification was made. */
  at: number;
  /** 0 for the first firing message, then 1, 2… for repeats. */
  repeat: number;
}

/**
 * Kinds whose signal is measured on the wall clock — dead letters in the last wall minute, a consumer group's lag now —
 * so their `for` and `resolveAfter` run on it too: on a replay's event clock, evaluated up to 240 times in a batch
 * spanning hours, one burst of dead letters (a wall second) held for any `for` and fired.
 */
const WALL_MEASURED: ReadonlySet<Rule['kind']> = new Set(['dead_letters', 'consumer_lag']);

interface State {
  phase: 'pending' | 'firing' | 'resolving';
  since: number;
  lastSentAt: number;
  /** The wall clock at the last message sent: reminders are paced by it too (see the class). */
  lastSentWall: number;
  clearSince: number;
  repeats: number;
  last: Observation;
}

/**
 * The alert state machine, pure (the clock is a parameter): per rule and series,
 *
 *   inactive ──holds──▶ pending ──held `for`──▶ FIRING (sent) ──every `repeatEvery`──▶ FIRING again (sent)
 *                         │ clear                    │ clear
 *                         ▼                          ▼
 *                      inactive                  resolving ──clear for `resolveAfter`──▶ RESOLVED (sent), inactive
 *                                                    │ holds again
 *                                                    └──────────▶ firing (nothing sent: it never resolved)
 *
 * so an alert fires once, repeats while active, resolves once, and a flapping condition produces neither a storm of
 * messages nor a resolve/fire pair per flap. A series missing from an evaluation counts as clear — unless its rule was
 * not evaluated at all (its signal not known yet: `unevaluated`), when it is left as it is.
 *
 * Everything runs on the event clock (`now`), except that a reminder also waits `repeatEvery` of the wall clock: a
 * reminder is for a person, and a replay runs the event clock a thousand times faster (a day replayed in 18 s sent 18
 * reminders per series to the log and to a configured webhook). Live, the two clocks agree and nothing changes.
 */
export class AlertStates {
  private readonly states = new Map<string, State>();

  private readonly wallNow: () => number;

  /** `wallNow`: the wall clock (tests inject one). */
  constructor(wallNow: () => number = Date.now) {
    this.wallNow = wallNow;
  }

  /**
   * `now`: the evaluation clock; `live`: whether it is the wall clock. When not (a replay), the kinds measured on the
   * wall clock (`WALL_MEASURED`) hold and clear on the wall clock too. `unevaluated`: the rules not evaluated this
   * time (their signal is not known yet): their series are left as they are, not counted clear.
   */
  update(
    observations: readonly Observation[],
    now: number,
    live = true,
    unevaluated: ReadonlySet<string> = new Set(),
  ): Notification[] {
    const out: Notification[] = [];
    const seen = new Set<string>();
    const at = (o: Observation) => (!live && WALL_MEASURED.has(o.rule.kind) ? this.wallNow() : now);
    for (const o of observations) {
      const id = `${o.rule.name}|${o.key}`;
      seen.add(id);
      this.step(id, o, at(o), out);
    }
    for (const [id, s] of this.states)
      if (!seen.has(id) && !unevaluated.has(s.last.rule.name))
        this.step(
          id,
          { ...s.last, active: false, message: `${s.last.key}: no longer reported` },
          at(s.last),
          out,
        );
    return out;
  }

  private step(id: string, o: Observation, now: number, out: Notification[]): void {
    const s = this.states.get(id);
    const r = o.rule;
    const send = (status: Notification['status'], st: State) =>
      out.push({
        status,
        rule: r.name,
        kind: r.kind,
        severity: r.severity,
        key: o.key,
        value: o.value,
        message: o.message,
        startsAt: st.since,
        at: now,
        repeat: status === 'firing' ? st.repeats : 0,
      });
    if (s === undefined) {
      if (!o.active) return;
      const st: State = {
        phase: 'pending',
        since: now,
        lastSentAt: 0,
        lastSentWall: 0,
        clearSince: 0,
        repeats: 0,
        last: o,
      };
      this.states.set(id, st);
      if (r.for <= 0) this.fire(st, now, send);
      return;
    }
    s.last = o;
    if (s.phase === 'pending') {
      if (!o.active) this.states.delete(id);
      else if (now - s.since >= r.for) this.fire(s, now, send);
      return;
    }
    if (o.active) {
      s.phase = 'firing';
      const wall = this.wallNow();
      if (now - s.lastSentAt >= r.repeatEvery && wall - s.lastSentWall >= r.repeatEvery) {
        s.repeats++;
        s.lastSentAt = now;
        s.lastSentWall = wall;
        send('firing', s);
      }
      return;
    }
    if (s.phase === 'firing') {
      s.phase = 'resolving';
      s.clearSince = now;
    }
    if (now - s.clearSince >= r.resolveAfter) {
      this.states.delete(id);
      send('resolved', s);
    }
  }

  private fire(s: State, now: number, send: (status: 'firing', st: State) => void): void {
    s.phase = 'firing';
    s.lastSentAt = now;
    s.lastSentWall = this.wallNow();
    s.repeats = 0;
    send('firing', s);
  }

  /**
   * Takes back an alert this state machine's predecessor announced firing (`n`, the newest notification of its
   * series, from the `alerts` topic) under `rule`, as firing since then: the next evaluations resolve it once its
   * condition has been clear for `resolveAfter`, or remind of it on its schedule. A monitor restarted without it
   * never resolved an alert whose condition had cleared meanwhile: the API listed it as firing for ever.
   */
  restore(
    n: Pick<Notification, 'key' | 'value' | 'message' | 'startsAt' | 'at' | 'repeat'>,
    rule: Rule,
  ): void {
    this.states.set(`${rule.name}|${n.key}`, {
      phase: 'firing',
      since: n.startsAt,
      lastSentAt: n.at,
      lastSentWall: n.at,
      clearSince: 0,
      repeats: n.repeat,
      last: { rule, key: n.key, active: true, value: n.value, message: n.message },
    });
  }

  /**
   * The first instant after `after`, on the evaluation clock, at which an evaluation seeing the same observations as the
   * last one would change something here: a pending alert's `for` passes, a resolving one's `resolveAfter`, a firing
   * one's reminder falls due (`repeatEvery`). A reminder due on this clock already, held back by the wall clock (see the
   * class), is due at `after` itself once the wall clock lets it go: the evaluations since held it back, and the next
   * one sends it (an evaluation every 15 s would, at the first of them) — not the next that a window or another
   * deadline brings, hours of a replay's event time later across a gap; while the wall clock still holds it back it
   * is not counted (a replay's batch is caught up on in milliseconds of wall time). Infinity when none would.
   * With `live` false, the kinds measured on the wall clock (`WALL_MEASURED`) are left out: their durations do not
   * run on this clock.
   */
  nextDeadline(after: number, live = true): number {
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.states.values()) {
      const r = s.last.rule;
      if (!live && WALL_MEASURED.has(r.kind)) continue;
      const due =
        s.phase === 'pending'
          ? s.since + r.for
          : s.phase === 'resolving'
            ? s.clearSince + r.resolveAfter
            : s.lastSentAt + r.repeatEvery;
      if (s.phase === 'firing' && due <= after) {
        if (this.wallNow() - s.lastSentWall >= r.repeatEvery && after < next) next = after;
        continue;
      }
      if (due > after && due < next) next = due;
    }
    return next;
  }

  /** The rule of each alert firing now, as `active()` counts them, without writing their messages. */
  activeRules(): string[] {
    const out: string[] = [];
    for (const s of this.states.values()) if (s.phase !== 'pending') out.push(s.last.rule.name);
    return out;
  }

  /** Alerts firing now (resolving ones included: they have not resolved yet). */
  active(): { rule: string; key: string; since: number; severity: Rule['severity']; message: string }[] {
    return [...this.states.values()]
      .filter((s) => s.phase !== 'pending')
      .map((s) => ({
        rule: s.last.rule.name,
        key: s.last.key,
        since: s.since,
        severity: s.last.rule.severity,
        message: s.last.message,
      }));
  }
}
