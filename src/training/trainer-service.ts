import { metrics } from '../core/metrics.ts';
import { MAX_TIMER_MS } from '../core/timer-limit.ts';
/**
 * The trainer service: retrains on a schedule and on demand, one run at a time, each run through the same gate as
 * `cryptocast train`. A failed run is logged and counted; the champion stays as it was and the schedule goes on.
 *
 * Timing, explicitly:
 * - the first run starts at `lastRegisteredAt + everyMs` (the newest registered version's creation: the schedule
 *   survives a restart, so a crash-looping trainer does not retrain on every boot), at once when that is past or
 *   nothing is registered; then every `everyMs` after the previous run **ended** (runs never overlap, and a slow run
 *   does not make the next one start late and pile up);
 * - after a failed run, the next comes `retryAfterFailureMs` after it (default 10 min), doubling with each failure in
 *   a row up to `everyMs`: a feature store or registry away for a moment at the weekly slot costs minutes, not a
 *   week without a refit, and a lasting failure is not retried in a loop;
 * - `requestNow()` (SIGHUP in the CLI) starts a run at once if idle; during a run it queues exactly one more.
 */
/**
 * The schedule's defaults: a weekly refit on the latest 365 days (all the history of the 14-month measurement). The
 * cadence study (docs/training.md) replayed schedules over 14 months of Binance: every 6 h on 14 days (the former
 * default) scored +0.192 % / +0.159 % skill (BTC / ETH); weekly on all history +0.300 % / +0.227 % (+0.357 % /
 * +0.261 % with the point model's two windows).
 */
export const TRAINER_EVERY = '7d';
/**
 * Optuna's budget for `train` and `service trainer` (seconds; 0 = the default parameters). Not tuned by default:
 * tuning picks parameters on one validation split before the first test block, and on the 14 months it traded ETH
 * for BTC (5 folds: ETH +0.174 % tuned vs +0.229 % default, BTC +0.276 % vs +0.260 %; docs/training.md), so the
 * model shipped is the one `./bench/run quality` measures. `--tune-seconds 120` asks for it.
 */
export const TUNE_SECONDS = '0';
/** The shortest schedule `service trainer --every` takes. */
export const MIN_TRAINER_EVERY_MS = 60_000;
export const TRAINER_DAYS = '365';

export interface RunResult {
  version: number;
  promoted: boolean;
}

export interface TrainerServiceOptions {
  everyMs: number;
  /**
   * When the newest version was registered (its card's `createdAt`, ms since the epoch): the last run that ended in
   * the registry, whichever process made it. Undefined: none, or a run wanted at once.
   */
  lastRegisteredAt?: number;
  /** At least this long before the first run (on top of `lastRegisteredAt`'s wait). */
  startDelayMs?: number;
  /** The wait after a failed run, doubled for each further failure in a row, never above `everyMs`. Default 10 min. */
  retryAfterFailureMs?: number;
  onRun?: (r: RunResult, reason: string) => void;
  onError?: (err: Error, reason: string) => void;
}

export interface TrainerServiceStats {
  runs: number;
  promoted: number;
  failed: number;
  running: boolean;
  lastVersion: number | null;
  lastError: string | null;
  lastRunAt: number | null;
  nextRunAt: number | null;
}

export const RETRY_AFTER_FAILURE_MS = 10 * 60_000;

export class TrainerService {
  readonly stats: TrainerServiceStats = {
    runs: 0,
    promoted: 0,
    failed: 0,
    running: false,
    lastVersion: null,
    lastError: null,
    lastRunAt: null,
    nextRunAt: null,
  };
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private stopped = false;
  /** Failed runs in a row since the last run that ended (promoted or not). */
  private failuresInARow = 0;
  private current: Promise<void> | undefined;

  private readonly retrain: (reason: string) => Promise<RunResult>;
  private readonly opts: TrainerServiceOptions;

  constructor(retrain: (reason: string) => Promise<RunResult>, opts: TrainerServiceOptions) {
    this.retrain = retrain;
    this.opts = opts;
  }

  start(): void {
    this.schedule(Math.max(this.opts.startDelayMs ?? 0, this.firstRunDelayMs()), 'schedule');
  }

  /** How long until `everyMs` has passed since the newest registered version (0 if it has, or there is none). */
  firstRunDelayMs(): number {
    const last = this.opts.lastRegisteredAt;
    return last === undefined ? 0 : Math.max(0, last + this.opts.everyMs - Date.now());
  }

  /** A run now (or right after the current one). */
  requestNow(reason = 'on demand'): void {
    if (this.stopped) return;
    if (this.stats.running) {
      this.pending = true;
      return;
    }
    this.schedule(0, reason);
  }

  private schedule(delayMs: number, reason: string): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const at = Date.now() + delayMs;
    this.stats.nextRunAt = at;
    // setTimeout fires at once past 2^31 − 1 ms (~24.8 days): a longer wait (--every 30d) goes in steps.
    const wait = () => {
      const left = at - Date.now();
      this.timer = setTimeout(
        () => {
          if (at - Date.now() > 0) wait();
          else this.current = this.runOnce(reason);
        },
        Math.min(Math.max(0, left), MAX_TIMER_MS),
      );
    };
    wait();
  }

  private async runOnce(reason: string): Promise<void> {
    this.stats.running = true;
    this.stats.nextRunAt = null;
    this.stats.lastRunAt = Date.now();
    try {
      const r = await this.retrain(reason);
      this.stats.runs++;
      if (r.promoted) this.stats.promoted++;
      metrics.trainerRuns.inc({ result: r.promoted ? 'promoted' : 'refused' });
      metrics.gateDecisions.inc({ decision: r.promoted ? 'promoted' : 'refused' });
      this.stats.lastVersion = r.version;
      this.stats.lastError = null;
      this.failuresInARow = 0;
      this.opts.onRun?.(r, reason);
    } catch (err) {
      this.stats.failed++;
      metrics.trainerRuns.inc({ result: 'failed' });
      this.stats.lastError = (err as Error).message;
      this.failuresInARow++;
      this.opts.onError?.(err as Error, reason);
    } finally {
      this.stats.running = false;
    }
    if (this.pending) {
      this.pending = false;
      this.schedule(0, 'on demand');
    } else if (this.failuresInARow > 0) {
      const first = this.opts.retryAfterFailureMs ?? RETRY_AFTER_FAILURE_MS;
      this.schedule(Math.min(this.opts.everyMs, first * 2 ** Math.min(this.failuresInARow - 1, 30)), 'retry');
    } else this.schedule(this.opts.everyMs, 'schedule');
  }

  /**
   * Stops the schedule and waits for the run in progress (never cut in the middle of registering). To end its fit
   * sooner, `retrain` takes a stop signal of its own (the CLI's does).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stats.nextRunAt = null;
    await this.current;
  }
}
