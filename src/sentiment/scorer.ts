import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { setting } from '../config/env.ts';
import { CircuitBreaker } from '../core/circuit-breaker.ts';
import { log } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { orAbort } from '../core/or-abort.ts';
import { redactSecrets } from '../core/secrets.ts';
import { type Sentiment, type SentimentBackend, SentimentError } from './labels.ts';
import { LexiconBackend } from './lexicon.ts';
import { prepareText } from './prompt.ts';

/** A sentiment with where it came from: the backend that produced it and whether that was the baseline. */
/** The cache file of LLM answers (`CRYPTOCAST_SENTIMENT_CACHE`): appended to, compacted past twice the cache size. */
export function sentimentCacheFile(): string {
  return setting('CRYPTOCAST_SENTIMENT_CACHE') ?? '.data/sentiment-cache.jsonl';
}

export interface ScoredText extends Sentiment {
  model: string;
  promptVersion: string;
  baseline: boolean;
  /** Set when the primary backend failed and the baseline answered instead. */
  fallback?: string;
  cached: boolean;
  /**
   * How long the primary took to make this answer, in ms: measured now, or, for a cached answer, when it was made
   * (unknown for cache entries written before it was recorded). The baseline's answers have none.
   */
  computeMs?: number;
}

export interface ScorerOptions {
  primary: SentimentBackend;
  /** Default: the VADER lexicon. */
  fallback?: SentimentBackend;
  /** The primary gets this long per text, queueing included; then the fallback answers. */
  timeoutMs?: number;
  /**
   * The timer of `timeoutMs`: a signal that aborts after that many ms. Default `AbortSignal.timeout`; tests give one
   * that fires on their clock (`now`).
   */
  timeoutSignal?: (ms: number) => AbortSignal;
  /**
   * The circuit breaker: after this many consecutive failed or timed-out calls of the primary, the fallback answers
   * every text at once for `breakerCooldownMs`, then one text tries the primary again (and closes the circuit if it
   * answers). A hung model otherwise cost every text the whole `timeoutMs`. Defaults `BREAKER_THRESHOLD`,
   * `BREAKER_COOLDOWN_MS`.
   */
  breakerThreshold?: number;
  breakerCooldownMs?: number;
  /**
   * The stop of the process that scores: it ends the model call in flight (the fallback answers that text) and every
   * later text goes to the fallback at once, so a stop does not wait out an LLM that does not answer (up to
   * `timeoutMs`, per text still queued).
   */
  signal?: AbortSignal;
  /**
   * What a stop does to the texts it leaves unscored: `baseline` (default) has the fallback answer them; `throw`
   * rejects with `ScoringStopped`, for a caller whose input is redelivered after a restart (a Kafka consumer that
   * leaves the batch uncommitted), so a stop does not degrade signals for good. `run`'s in-process bus does not
   * survive the stop: there the baseline is the only answer they will ever get.
   */
  whenStopped?: 'baseline' | 'throw';
  /** Entries kept in memory. */
  cacheSize?: number;
  /** JSONL file that makes the cache survive restarts (optional): appended to, rewritten with the kept entries once
   * it holds more than twice `cacheSize` lines. */
  cacheFile?: string;
  /**
   * After the primary's load (`warmUp`) failed or passed its deadline, the fallback scores every text for this long
   * before the load is tried once more. Default `LOAD_RETRY_MS`.
   */
  loadRetryMs?: number;
  /**
   * The scorer's clock, in ms since the epoch: the time the primary takes per text (`computeMs`, which dates the
   * signals) and the load's back-off. Default: the monotonic clock counted from the process's start
   * (`performance.timeOrigin + performance.now()`), so a step of the wall clock does not make a text look free or
   * slow. Tests give their own, so the time a fake model "takes" is asserted as measured, not a timer's real delay.
   */
  now?: () => number;
}

/**
 * The back-off after a failed model load. A load that hangs fails only at its deadline (the local backend's
 * `LOAD_TIMEOUT_MS`, 120 s): tried again at every text, each item waited those 120 s for the same failure.
 */
export const LOAD_RETRY_MS = 10 * 60_000;

/**
 * The scorer's circuit breaker: 3 failed or timed-out calls in a row open it (at the 20-s limit, a minute of a hung
 * model), then the fallback answers at once for a minute before one text tries the model again.
 */
export const BREAKER_THRESHOLD = 3;
export const BREAKER_COOLDOWN_MS = 60_000;

/** Thrown by `score` after the stop, when the scorer was made with `whenStopped: 'throw'`. */
export class ScoringStopped extends Error {
  override readonly name = 'ScoringStopped';
  constructor() {
    super('scoring stopped: the process is stopping');
  }
}

/** A cached answer of the primary, with how long the primary took to make it (ms). */
interface CachedAnswer extends Sentiment {
  ms?: number;
}

interface CacheEntry extends CachedAnswer {
  k: string;
}

/**
 * The one way the pipeline scores text: cache → primary backend (bounded in time) → baseline fallback.
 *
 * The cache key is (SHA-256 of the cleaned text, model, prompt version), so a model or prompt change never
 * serves stale answers. Only the primary's answers are cached: a fallback is retried the next time.
 * Failures never escape except for bad input (nothing to score), which the caller dead-letters.
 */
export class SentimentScorer {
  readonly stats = { scored: 0, cacheHits: 0, fallbacks: 0 };
  readonly primary: SentimentBackend;
  private readonly fallback: SentimentBackend;
  private readonly timeoutMs: number;
  private readonly timeoutSignal: (ms: number) => AbortSignal;
  private readonly breaker: CircuitBreaker;
  /** Why the circuit opened (the last failure), for the fallback's reason; texts the fallback answered since. */
  private circuit: { why: string; since: number; shortCircuited: number } | undefined;
  private readonly stop: AbortSignal | undefined;
  private readonly whenStopped: 'baseline' | 'throw';
  private readonly cacheSize: number;
  private readonly cacheFile: string | undefined;
  private readonly cache = new Map<string, CachedAnswer>();
  private warm = false;
  private readonly loadRetryMs: number;
  private readonly now: () => number;
  /** The last load's failure and when the load may be tried again; until then the fallback answers at once. */
  private loadFailed: { why: string; retryAt: number } | undefined;
  /** False once a write to the cache file failed: it is not tried again (see `remember`). */
  private persisting = true;
  /** The cache file ends in a torn line (no newline). */
  private tornEnd = false;
  /** Lines in the cache file (read or appended): past twice the cache size it is rewritten with the kept entries. */
  private fileLines = 0;

  constructor(opts: ScorerOptions) {
    this.primary = opts.primary;
    this.fallback = opts.fallback ?? new LexiconBackend();
    this.timeoutMs = opts.timeoutMs ?? 20_000;
    this.stop = opts.signal;
    this.whenStopped = opts.whenStopped ?? 'baseline';
    this.cacheSize = opts.cacheSize ?? 50_000;
    this.cacheFile = opts.cacheFile;
    this.loadRetryMs = opts.loadRetryMs ?? LOAD_RETRY_MS;
    this.now = opts.now ?? monotonicNow;
    this.timeoutSignal = opts.timeoutSignal ?? ((ms) => AbortSignal.timeout(ms));
    this.breaker = new CircuitBreaker({
      threshold: opts.breakerThreshold ?? BREAKER_THRESHOLD,
      cooldownMs: opts.breakerCooldownMs ?? BREAKER_COOLDOWN_MS,
      now: this.now,
    });
    metrics.sentimentCircuitOpen.set({ backend: this.primary.name }, 0);
    if (this.cacheFile && existsSync(this.cacheFile)) this.loadCache(this.cacheFile);
  }

  static key(text: string, backend: SentimentBackend): string {
    const h = createHash('sha256').update(text).digest('hex').slice(0, 32);
    return `${h}|${backend.name}|${backend.promptVersion}`;
  }

  /**
   * Scores one text. Throws SentimentError('bad-input') only when there is nothing to score. `forceBaseline` (the
   * reason): the primary is not asked — but its cached answer, free and better than the baseline's, is still used.
   * `signal`: the caller no longer wants the answer (its batch was given back, `Batch.signal`): the model call in flight
   * ends, and `score` rejects with the signal's reason — no baseline answers in its place.
   */
  async score(
    text: string,
    opts: { forceBaseline?: string; signal?: AbortSignal } = {},
  ): Promise<ScoredText> {
    opts.signal?.throwIfAborted();
    const prepared = prepareText(text); // throws bad-input on empty
    this.stats.scored++;
    const key = SentimentScorer.key(prepared, this.primary);
    const hit = this.cache.get(key);
    if (hit) {
      this.stats.cacheHits++;
      const { ms, ...answer } = hit;
      return { ...this.tag(answer, this.primary, true), ...(ms === undefined ? {} : { computeMs: ms }) };
    }
    if (opts.forceBaseline) return this.viaFallback(prepared, opts.forceBaseline);
    if (this.stop?.aborted) return this.stopped(prepared);
    if (!this.warm) {
      const failed = await this.warmUp();
      if (failed === STOPPED) return this.stopped(prepared);
      if (failed) return this.viaFallback(prepared, failed);
    }
    // The circuit is open (the primary failed or timed out BREAKER_THRESHOLD times in a row): the fallback answers at
    // once, without waiting out the limit again for each text.
    const admission = this.breaker.admit();
    if (!admission.admitted) {
      this.circuit!.shortCircuited++;
      // The time first: a signal keeps the first 200 characters of the reason, and the last failure's can be long.
      return this.viaFallback(
        prepared,
        `circuit-open: the model is tried again after ${new Date(admission.retryAt).toISOString()}; ` +
          `${this.breaker.failures} calls of it in a row failed (last: ${this.circuit!.why})`,
      );
    }
    try {
      const t0 = this.now();
      const timeout = this.timeoutSignal(this.timeoutMs);
      const deadline = AbortSignal.any([
        timeout,
        ...(this.stop ? [this.stop] : []),
        ...(opts.signal ? [opts.signal] : []),
      ]);
      const s = await withinDeadline(this.primary.score(prepared, deadline), deadline);
      const ms = Math.ceil(this.now() - t0);
      this.modelAnswered(admission.probe);
      metrics.sentimentLatency.observe({ backend: this.primary.name }, ms / 1000);
      this.remember(key, { ...s, ms });
      return { ...this.tag(s, this.primary, false), computeMs: ms };
    } catch (err) {
      // The caller's batch was taken away (Batch.signal): no answer at all; a probe's turn is given back.
      if (opts.signal?.aborted) {
        this.breaker.abandoned(admission.probe);
        opts.signal.throwIfAborted();
      }
      // The call ended by the stop (whatever error the backend made of its abort): the baseline answers, unlogged
      // (or the caller is told, `whenStopped`).
      if (this.stop?.aborted) {
        this.breaker.abandoned(admission.probe);
        return this.stopped(prepared);
      }
      // The reason is published in the signal (news.signals is not the log, which redacts itself): a backend's
      // message quoting its URL or the server's answer must not carry a password or key there.
      const why = redactSecrets(
        err instanceof SentimentError ? `${err.kind}: ${err.message}` : `error: ${(err as Error).message}`,
      );
      // Invalid output is an answer in time (the model works; this text went wrong): it does not count towards
      // opening the circuit.
      if (err instanceof SentimentError && err.kind === 'invalid-output') {
        this.modelAnswered(admission.probe);
        log.warn({ backend: this.primary.name, why }, 'sentiment backend failed; baseline used');
      } else this.modelFailed(admission.probe, why);
      return this.viaFallback(prepared, why);
    }
  }

  /** The primary answered: closes an open circuit (one line, with what it cost). */
  private modelAnswered(probe: boolean): void {
    if (!this.breaker.succeeded(probe)) return;
    const circuit = this.circuit;
    this.circuit = undefined;
    metrics.sentimentCircuitOpen.set({ backend: this.primary.name }, 0);
    log.info(
      {
        backend: this.primary.name,
        openMs: circuit ? Math.round(this.now() - circuit.since) : undefined,
        baselineTexts: circuit?.shortCircuited,
      },
      `sentiment model ${this.primary.name} answers again: circuit closed, the model scores the texts again`,
    );
  }

  /**
   * The primary failed or timed out: logged once per failure (each cost up to the limit), and once more when that
   * opens the circuit. A failed probe is its one line, saying until when the circuit stays open.
   */
  private modelFailed(probe: boolean, why: string): void {
    const outcome = this.breaker.failed(probe);
    const backend = this.primary.name;
    if (outcome === undefined) {
      log.warn({ backend, why }, 'sentiment backend failed; baseline used');
      return;
    }
    const retryAt = new Date(this.breaker.retryAt!).toISOString();
    if (outcome === 'still-open') {
      this.circuit = { ...(this.circuit ?? { since: this.now(), shortCircuited: 0 }), why };
      log.warn(
        { backend, why, retryAt },
        `sentiment model ${backend} still fails (${why}): circuit open, the baseline scores every text until ${retryAt}`,
      );
      return;
    }
    this.circuit = { why, since: this.now(), shortCircuited: 0 };
    metrics.sentimentCircuitOpen.set({ backend }, 1);
    log.warn({ backend, why }, 'sentiment backend failed; baseline used');
    log.warn(
      { backend, failures: this.breaker.failures, why, retryAt },
      `sentiment model ${backend} failed ${this.breaker.failures} times in a row: circuit open, the baseline scores ` +
        `every text at once until ${retryAt}, then one text tries the model again`,
    );
  }

  /**
   * Loads the primary once; undefined when it is ready, else why the fallback answers. A failed load is remembered:
   * for `loadRetryMs` no text waits for it again (one warning says so), then one text tries it once more.
   */
  private async warmUp(): Promise<string | undefined> {
    if (this.loadFailed && this.now() < this.loadFailed.retryAt) return this.loadFailed.why;
    try {
      const load = this.primary.warmUp?.();
      // A stop during the model's load does not wait for it (the load finishes or fails on its own).
      if (load) await (this.stop ? withinDeadline(load, this.stop) : load);
      this.warm = true;
      this.loadFailed = undefined;
      return undefined;
    } catch (err) {
      if (this.stop?.aborted) return STOPPED;
      const why = redactSecrets(
        err instanceof SentimentError ? `${err.kind}: ${err.message}` : `error: ${(err as Error).message}`,
      );
      const retryAt = this.now() + this.loadRetryMs;
      this.loadFailed = { why, retryAt };
      log.warn(
        { backend: this.primary.name, why, retryAt: new Date(retryAt).toISOString() },
        `sentiment model ${this.primary.name} did not load: the baseline scores every text until ` +
          `${new Date(retryAt).toISOString()}, then the load is tried once more`,
      );
      return why;
    }
  }

  /** A text the stop leaves unscored: the baseline's answer, or `ScoringStopped` (`whenStopped`). */
  private stopped(text: string): Promise<ScoredText> {
    if (this.whenStopped === 'throw') return Promise.reject(new ScoringStopped());
    return this.viaFallback(text, STOPPED);
  }

  private async viaFallback(text: string, why: string): Promise<ScoredText> {
    this.stats.fallbacks++;
    metrics.sentimentFallbacks.inc({ reason: fallbackKind(why) });
    const s = await this.fallback.score(text);
    return { ...this.tag(s, this.fallback, false), fallback: why };
  }

  private tag(s: Sentiment, b: SentimentBackend, cached: boolean): ScoredText {
    return { ...s, model: b.name, promptVersion: b.promptVersion, baseline: b.baseline, cached };
  }

  private remember(key: string, s: CachedAnswer): void {
    if (this.cacheSize <= 0) return;
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, s);
    if (this.cacheFile && this.persisting) {
      try {
        mkdirSync(dirname(this.cacheFile), { recursive: true });
        const line = `${JSON.stringify({ k: key, ...s } satisfies CacheEntry)}\n`;
        // After a torn last line (a crash, a full disk) the first answer starts on a line of its own, or it would
        // be read back glued to the torn one and lost.
        appendFileSync(this.cacheFile, this.tornEnd ? `\n${line}` : line);
        this.tornEnd = false;
        if (++this.fileLines > 2 * this.cacheSize) this.compact(this.cacheFile);
      } catch (err) {
        // A full disk (or a read-only one) fails every later write the same way: one warning, then the file is left
        // alone for the rest of this scorer's life. The answers are still used and kept in memory.
        this.persisting = false;
        const e = err as NodeJS.ErrnoException;
        log.warn(
          { file: this.cacheFile, reason: e.message, code: e.code },
          `sentiment cache ${this.cacheFile} cannot be written: answers are no longer cached on disk until restart ` +
            '(they are still used, and cached in memory); free space there, or set CRYPTOCAST_SENTIMENT_CACHE',
        );
      }
    }
  }

  private loadCache(file: string): void {
    let bad = 0;
    const text = readFileSync(file, 'utf8');
    this.tornEnd = text !== '' && !text.endsWith('\n');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      this.fileLines++;
      try {
        const { k, ms, ...s } = JSON.parse(line) as CacheEntry;
        if (typeof k === 'string' && typeof s.label === 'string')
          this.cache.set(k, typeof ms === 'number' && ms >= 0 ? { ...s, ms } : s);
        else bad++;
      } catch {
        bad++; // a torn last line after a crash
      }
    }
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    if (bad) log.warn({ file, bad }, 'sentiment cache: unreadable lines ignored');
    // A scorer without an in-memory cache (cacheSize 0) leaves the file alone rather than empty it.
    if (this.cacheSize > 0 && this.fileLines > 2 * this.cacheSize) {
      try {
        this.compact(file);
      } catch (err) {
        // Read-only or full disk: the entries are loaded; the file stays as it was.
        log.warn({ file, reason: (err as Error).message }, 'sentiment cache: could not be compacted');
      }
    }
  }

  /**
   * Rewrites the file with the entries kept in memory. Appending alone made it grow by one line per answer for ever,
   * and each start read it whole (a string past V8's limit, about 512 MB, would stop the scorer from starting).
   * Written beside it and renamed over it, so a crash leaves either file whole.
   */
  private compact(file: string): void {
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      const body = [...this.cache]
        .map(([k, s]) => `${JSON.stringify({ k, ...s } satisfies CacheEntry)}\n`)
        .join('');
      writeFileSync(tmp, body);
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    this.fileLines = this.cache.size;
    this.tornEnd = false;
  }

  async close(): Promise<void> {
    await this.primary.close?.();
  }
}

/** Milliseconds since the epoch on the monotonic clock: never steps back with the wall clock. */
function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The fallback counter's `reason` label: the reason's first word (`timeout`, `unavailable`, `invalid-output`, `error`,
 * `circuit-open`, `stopped`, `behind`). It was everything up to the first colon, and a lagging item's reason has none
 * ("behind by 125 s (limit 60 s)"): each number of seconds behind made a series of its own.
 */
function fallbackKind(why: string): string {
  return /^[a-z][a-z-]*/i.exec(why)?.[0]?.toLowerCase() ?? 'other';
}

/** The fallback's reason when the scorer was stopped (the first word is the metric's `reason` label). */
const STOPPED = 'stopped: the process is stopping';

/**
 * The backend's answer, or a timeout error once `deadline` fires even if the backend ignores it: the local model's
 * classifier mode cannot abort an embedding, and a wedged call would otherwise hold the news-signals stage for ever.
 */
function withinDeadline<T>(answer: Promise<T>, deadline: AbortSignal): Promise<T> {
  return orAbort(answer, deadline).catch((err: unknown) => {
    throw deadline.aborted && err === deadline.reason
      ? new SentimentError('timeout', 'no answer in time')
      : err;
  });
}
