import { type Logger, log as rootLog } from '../../core/log.ts';
import { metrics } from '../../core/metrics.ts';
import type { AlertNotification } from '../../schemas/alert.ts';
import { figures, type RollingQuality } from '../rolling-quality.ts';
import type { AlertDelivery } from './delivery.ts';
import type { Rule } from './rules.ts';
import { AlertStates, type Notification, type Observation } from './state.ts';

/** What the rules are evaluated on, read from the monitor at each evaluation. */
export interface AlertSignals {
  /** The evaluation clock: the wall clock live, the stream's clock on a replay. */
  now: number;
  /**
   * Live (wall clock): silence is an outage. On a replay (event clock) a recording that ends is not, so the
   * staleness rules (no_candles, no_trades, feature_staleness) are not evaluated there.
   */
  live: boolean;
  quality: RollingQuality;
  /** Newest candle windowEnd per pair, and newest candle that had trades. */
  lastCandle: ReadonlyMap<string, number>;
  lastTradeCandle: ReadonlyMap<string, number>;
  /** Newest feature vector windowEnd per pair. */
  lastFeature: ReadonlyMap<string, number>;
  /**
   * When the monitor began reading the features topic (from its end, live): a pair with no vector since has been
   * without one that long as far as the monitor knows — not "for ever", which fired features-stale at every start.
   */
  featuresWatchedSince?: number;
  /**
   * Whether the monitor has read the candles to the end (`Subscription.readToEnd`) since it started. Before (a
   * restart re-reads a day of them), the newest candle read is not the newest there is: no_candles and no_trades are
   * not evaluated yet.
   */
  candlesCaughtUp: boolean;
  /** Lag per `topic/group` of the pipeline's consumer groups. */
  consumerLag: ReadonlyMap<string, number>;
  /** When the serving champion was trained (undefined: no champion). */
  championCreatedAt: number | undefined;
  /** Dead letters in the minute before `now`. */
  deadLettersLastMinute: number;
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const mins = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;

/**
 * Whether `rule` can be evaluated on `s`: the staleness kinds and champion_age not on a replay, and no_candles and no_trades not before
 * the candles are read to the end after a start (see `AlertSignals`). A rule that cannot be is not clear either: its
 * alerts are left as they are (`AlertStates.update`).
 */
export function evaluable(rule: Rule, s: AlertSignals): boolean {
  if (rule.kind === 'feature_staleness') return s.live;
  // The champion's age is wall-clock (now − its training time, as `cryptocast_champion_age_seconds`): a replay's event
  // clock says nothing about it. Evaluated there, the rule depended on the period replayed: never for one before the
  // training (a negative age), firing for one recorded 15 days after it though no time had passed.
  if (rule.kind === 'champion_age') return s.live;
  if (rule.kind === 'no_candles' || rule.kind === 'no_trades') return s.live && s.candlesCaughtUp;
  return true;
}

/** The observations of one rule (per pair, or `all`) on the signals. */
export function observe(rule: Rule, s: AlertSignals): Observation[] {
  const out: Observation[] = [];
  const wanted = (pair: string) => rule.pairs === undefined || rule.pairs.includes(pair);
  // The sentence is written only when read (a notification, the active list): a replay evaluates the rules thousands
  // of times, and formatting every one was most of an evaluation's cost.
  const obs = (key: string, active: boolean, value: number | null, message: () => string) =>
    out.push({
      rule,
      key,
      active,
      value,
      get message() {
        return message();
      },
    });
  switch (rule.kind) {
    case 'skill_below':
    case 'mae_above':
    case 'coverage_outside': {
      const windowMs = s.quality.windows[rule.window]!;
      const pairs = new Set(s.quality.series().map((x) => x.pair));
      for (const pair of pairs) {
        if (!wanted(pair)) continue;
        const f = figures(s.quality.sums(pair, windowMs, s.now));
        const enough = f.count >= rule.minCount;
        if (rule.kind === 'skill_below') {
          const v = f.skill;
          obs(pair, enough && v !== null && v < rule.threshold, v, () =>
            v === null
              ? `${pair}: no skill over ${rule.window} yet`
              : `${pair}: skill over ${rule.window} is ${pct(v)} (threshold ${pct(rule.threshold)}, ${f.count} predictions): the model is ${v < 0 ? 'worse than' : 'no better than'} persistence`,
          );
        } else if (rule.kind === 'mae_above') {
          const limit =
            typeof rule.threshold === 'number'
              ? rule.threshold
              : (rule.threshold[pair] ?? rule.threshold.default);
          const v = f.mae;
          obs(
            pair,
            enough && v !== null && limit !== undefined && v > limit,
            v,
            () =>
              `${pair}: MAE over ${rule.window} is ${v?.toFixed(4) ?? '—'} (threshold ${limit ?? 'none'}, ${f.count} predictions)`,
          );
        } else {
          const v = f.coverage;
          obs(
            pair,
            enough && v !== null && (v < rule.low || v > rule.high),
            v,
            () =>
              `${pair}: p10–p90 coverage over ${rule.window} is ${v === null ? '—' : pct(v)} (band ${pct(rule.low)}–${pct(rule.high)}, target 80 %, ${f.count} predictions)`,
          );
        }
      }
      return out;
    }
    case 'no_candles':
    case 'no_trades':
    case 'feature_staleness': {
      if (!evaluable(rule, s)) return out;
      const last =
        rule.kind === 'no_candles'
          ? s.lastCandle
          : rule.kind === 'no_trades'
            ? s.lastTradeCandle
            : s.lastFeature;
      const pairs = new Set([...s.lastCandle.keys(), ...last.keys()]);
      const what =
        rule.kind === 'no_candles'
          ? 'no candle'
          : rule.kind === 'no_trades'
            ? 'no trade'
            : 'no new feature vector';
      for (const pair of pairs) {
        if (!wanted(pair)) continue;
        const t = last.get(pair) ?? (rule.kind === 'feature_staleness' ? s.featuresWatchedSince : undefined);
        const age = t === undefined ? Number.POSITIVE_INFINITY : s.now - t;
        obs(
          pair,
          age > rule.minutes * 60_000,
          Number.isFinite(age) ? age / 60_000 : null,
          () =>
            `${pair}: ${what} for ${Number.isFinite(age) ? mins(age) : 'ever'} (limit ${rule.minutes} min)`,
        );
      }
      return out;
    }
    case 'consumer_lag': {
      let worst: [string, number] | undefined;
      for (const [g, lag] of s.consumerLag) if (worst === undefined || lag > worst[1]) worst = [g, lag];
      const v = worst?.[1] ?? 0;
      obs(
        'all',
        v >= rule.records,
        v,
        () => `consumer group ${worst?.[0] ?? '—'} is ${v} records behind (limit ${rule.records})`,
      );
      return out;
    }
    case 'champion_age': {
      if (!evaluable(rule, s) || s.championCreatedAt === undefined) return out;
      const hours = (s.now - s.championCreatedAt) / 3_600_000;
      obs(
        'all',
        hours > rule.hours,
        hours,
        () =>
          `the champion was trained ${hours.toFixed(1)} h ago (limit ${rule.hours} h): is the trainer running?`,
      );
      return out;
    }
    case 'dead_letters': {
      const v = s.deadLettersLastMinute;
      obs(
        'all',
        v > rule.perMinute,
        v,
        () => `${v} dead letters in the last minute (limit ${rule.perMinute})`,
      );
      return out;
    }
  }
}

/**
 * Evaluates the rules on the monitor's signals, runs the state machine, and hands what it says to the delivery
 * (which never blocks). Every notification is logged too, so alerts are visible even with no channel configured.
 */
/**
 * A notification as a log line (`service: alerts`, the message `firing: …` or `resolved: …`, the alert's fields): at
 * warn when it fires and info when it resolves, unless `level` says otherwise.
 */
export function logNotification(
  log: Logger,
  n: Notification,
  level: 'warn' | 'info' = n.status === 'firing' ? 'warn' : 'info',
): void {
  log[level](
    {
      rule: n.rule,
      key: n.key,
      severity: n.severity,
      repeat: n.repeat,
      // On the clock the rules ran on: a replay's event time, which the line's own `time` (the wall clock) is not.
      at: new Date(n.at).toISOString(),
      startsAt: new Date(n.startsAt).toISOString(),
    },
    `${n.status}: ${n.message}`,
  );
}

export class AlertEngine {
  readonly rules: readonly Rule[];
  private readonly states: AlertStates;
  private readonly delivery: AlertDelivery | undefined;
  private readonly log: Logger;
  /** What `cryptocast_alerts_active` was last set to, per rule. */
  private readonly exported = new Map<string, number>();

  /** Called with each notification (the monitor publishes them to the `alerts` topic). */
  onNotification?: (n: Notification) => void;

  /**
   * How a notification is shown to whoever watches the process: by default a log line (firing at warn, resolved at
   * info: a service's log); `tell` instead when given (`cryptocast run` prints one line per transition on its output,
   * whose log level is warn: a resolution logged at info never showed, and a replay's alerts seemed never to end).
   */
  private readonly tell: ((n: Notification) => void) | undefined;

  constructor(
    rules: readonly Rule[],
    delivery?: AlertDelivery,
    logger?: Logger,
    tell?: (n: Notification) => void,
    wallNow: () => number = Date.now,
  ) {
    this.rules = rules;
    // The wall clock reminders are paced by on a replay (`AlertStates`): tests inject one.
    this.states = new AlertStates(wallNow);
    this.delivery = delivery;
    this.log = (logger ?? rootLog).child({ service: 'alerts' });
    this.tell = tell;
  }

  evaluate(signals: AlertSignals): Notification[] {
    const observations = this.rules.flatMap((r) => observe(r, signals));
    // A rule not evaluated now leaves its alerts as they are: counted clear, an alert taken back at a restart (no-candles
    // firing) resolved while the day of candles was re-read, and fired again once it was (a resolve/fire pair).
    const unevaluated = new Set(this.rules.filter((r) => !evaluable(r, signals)).map((r) => r.name));
    const out = this.states.update(observations, signals.now, signals.live, unevaluated);
    for (const n of out) this.notify(n);
    const counts = new Map(this.rules.map((r) => [r.name, 0]));
    for (const a of this.states.activeRules()) counts.set(a, (counts.get(a) ?? 0) + 1);
    // Set when changed: a gauge with labels costs a hash per set, and a replay evaluates thousands of times.
    for (const [rule, n] of counts)
      if (this.exported.get(rule) !== n) {
        metrics.alertsActive.set({ rule }, n);
        this.exported.set(rule, n);
      }
    return out;
  }

  /** Logs (or tells), delivers and hands on (`onNotification`) one notification. */
  private notify(n: Notification): void {
    if (this.tell !== undefined) this.tell(n);
    else logNotification(this.log, n);
    this.delivery?.send(n);
    this.onNotification?.(n);
  }

  /**
   * Takes back the alerts still firing in `announced` (the `alerts` topic's tail, any order): the newest notification
   * of each series, if firing under a rule still configured, is firing here too (`AlertStates.restore`); under a rule
   * no longer configured (renamed, removed), nothing would ever resolve it: it is resolved now.
   */
  restore(announced: readonly AlertNotification[], now: number): void {
    const newest = new Map<string, AlertNotification>();
    for (const n of [...announced].sort((a, b) => a.at - b.at)) newest.set(`${n.rule}|${n.key}`, n);
    for (const n of newest.values()) {
      if (n.status !== 'firing') continue;
      const rule = this.rules.find((r) => r.name === n.rule);
      if (rule !== undefined) this.states.restore(n, rule);
      else
        this.notify({
          ...n,
          status: 'resolved',
          kind: n.kind as Notification['kind'],
          message: `${n.message} (resolved: the rule ${n.rule} is no longer configured)`,
          at: now,
          repeat: 0,
        });
    }
  }

  active() {
    return this.states.active();
  }

  /** See `AlertStates.nextDeadline`. */
  nextDeadline(after: number, live: boolean): number {
    return this.states.nextDeadline(after, live);
  }

  /** The lengths of the rolling-quality windows the rules read (`RollingQuality.nextChange`). */
  windowsRead(quality: RollingQuality): number[] {
    const read = new Set<number>();
    for (const r of this.rules)
      if (r.kind === 'skill_below' || r.kind === 'mae_above' || r.kind === 'coverage_outside')
        read.add(quality.windows[r.window]!);
    return [...read];
  }
}
