// undici's own fetch, not Node's bundled copy (its crash on a connection closed under back-pressure: see
// src/data/binance-archive.ts), and the type `boundedText` reads.
import { setTimeout as sleep } from 'node:timers/promises';
import { fetch, type Response } from 'undici';
import { secret } from '../config/env.ts';
import { BodyTooLargeError, boundedText } from '../core/http.ts';
import { log } from '../core/log.ts';
import { backoffDelay, parseRetryAfter } from '../core/retry.ts';
import { redactSecrets } from '../core/secrets.ts';
import { type Sentiment, type SentimentBackend, SentimentError } from './labels.ts';
import {
  PROMPT_VERSION,
  parseAnswer,
  prepareText,
  SENTIMENT_JSON_SCHEMA,
  SYSTEM_PROMPT,
  userPrompt,
} from './prompt.ts';

export interface OpenAiOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:11434/v1` (Ollama) or `https://api.openai.com/v1`. */
  baseUrl: string;
  model: string;
  /** Bearer token; default from CRYPTOCAST_LLM_API_KEY, then OPENAI_API_KEY. Never logged. */
  apiKey?: string;
  /** Per attempt. */
  timeoutMs?: number;
  /** Attempts after the first, on 429, 5xx, timeouts and connection errors (not on 4xx or invalid output). */
  retries?: number;
  /** Consecutive failed calls that open the circuit, and how long it stays open before one trial call. */
  breakerThreshold?: number;
  breakerCooldownMs?: number;
  /** Maximum answer tokens. */
  maxTokens?: number;
}

/**
 * Largest answer body read. A chat completion of `maxTokens` (160) is a few KB; without a bound a broken server's
 * endless body was buffered whole until the attempt's time-out.
 */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * The longest Retry-After waited out inside a call (the scorer gives a text 20 s). A longer one ends the call at once
 * (`unavailable`, saying so) and no call goes to the server until it has passed (at most `MAX_RATE_LIMIT_MS`): waited
 * out, the scorer's limit ended the call, so each text cost the whole limit, its fallback said "timeout" of a server
 * that had answered at once, and the next text called the server again inside the time it had asked for.
 */
export const MAX_RETRY_WAIT_MS = 10_000;
/** The longest a Retry-After keeps calls from the server: a Retry-After of days (a misconfigured proxy) stays an hour. */
export const MAX_RATE_LIMIT_MS = 3_600_000;

type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * Any OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp's server, hosted APIs). The answer is
 * constrained with `response_format: json_schema` where the server supports it, and always validated after parsing.
 *
 * Failure handling, in order: a timeout per attempt; retries with exponential backoff (honouring `Retry-After`)
 * for transient failures; a circuit breaker that, after `breakerThreshold` consecutive failed calls, fails fast for
 * `breakerCooldownMs`, then lets one trial call through (half-open) — so a dead server costs the pipeline
 * nothing while the caller falls back to the baseline.
 */
export class OpenAiBackend implements SentimentBackend {
  readonly name: string;
  readonly promptVersion = PROMPT_VERSION;
  readonly baseline = false;
  readonly stats = { calls: 0, retries: 0, failures: 0, shortCircuited: 0 };
  private readonly url: string;
  private readonly model: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly maxTokens: number;
  private state: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  /** No call before this time (epoch ms): the server's Retry-After was longer than `MAX_RETRY_WAIT_MS`. */
  private rateLimitedUntil = 0;

  constructor(opts: OpenAiOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new SentimentError('bad-input', `not a URL: ${opts.baseUrl}`);
    }
    if (!/^https?:$/.test(base.protocol))
      throw new SentimentError('bad-input', `not an http(s) URL: ${opts.baseUrl}`);
    this.url = `${base.href.replace(/\/+$/, '')}/chat/completions`;
    this.model = opts.model;
    this.name = `openai:${opts.model}`;
    this.apiKey = opts.apiKey ?? secret('CRYPTOCAST_LLM_API_KEY') ?? secret('OPENAI_API_KEY');
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.retries = opts.retries ?? 2;
    this.threshold = opts.breakerThreshold ?? 5;
    this.cooldownMs = opts.breakerCooldownMs ?? 30_000;
    this.maxTokens = opts.maxTokens ?? 160;
  }

  get circuit(): BreakerState {
    if (this.state === 'open' && Date.now() - this.openedAt >= this.cooldownMs) return 'half-open';
    return this.state;
  }

  async score(text: string, signal?: AbortSignal): Promise<Sentiment> {
    const prepared = prepareText(text);
    if (Date.now() < this.rateLimitedUntil)
      throw new SentimentError(
        'unavailable',
        `rate limited by ${this.url} until ${new Date(this.rateLimitedUntil).toISOString()} (its Retry-After)`,
      );
    const circuit = this.circuit;
    if (circuit === 'open' || (circuit === 'half-open' && this.trialInFlight)) {
      this.stats.shortCircuited++;
      throw new SentimentError(
        'unavailable',
        `circuit open after ${this.consecutiveFailures} failures: ${this.url}`,
      );
    }
    const trial = circuit === 'half-open';
    if (trial) this.trialInFlight = true;
    this.stats.calls++;
    try {
      const raw = await this.callWithRetries(prepared, signal);
      const answer = parseAnswer(raw);
      this.onSuccess();
      return answer;
    } catch (err) {
      // Invalid output is the model's fault, not the server's: it does not count against the circuit.
      if (err instanceof SentimentError && err.kind === 'invalid-output') this.onSuccess();
      else this.onFailure();
      throw err;
    } finally {
      if (trial) this.trialInFlight = false;
    }
  }

  private onSuccess(): void {
    this.consecutiveFailures = 0;
    if (this.state !== 'closed') log.info({ backend: this.name }, 'LLM circuit closed');
    this.state = 'closed';
  }

  private onFailure(): void {
    this.stats.failures++;
    this.consecutiveFailures++;
    if (this.state === 'open' || this.consecutiveFailures >= this.threshold) {
      if (this.state !== 'open')
        log.warn({ backend: this.name, failures: this.consecutiveFailures }, 'LLM circuit opened');
      this.state = 'open';
      this.openedAt = Date.now();
    }
  }

  private async callWithRetries(text: string, signal?: AbortSignal): Promise<string> {
    let last: SentimentError | undefined;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (signal?.aborted) throw new SentimentError('timeout', 'caller gave up');
      const r = await this.attempt(text, signal);
      if (r.ok) return r.content;
      last = r.error;
      if (r.retryAfterMs !== undefined && r.retryAfterMs > MAX_RETRY_WAIT_MS) {
        const ms = Math.min(r.retryAfterMs, MAX_RATE_LIMIT_MS);
        this.rateLimitedUntil = Date.now() + ms;
        throw new SentimentError(
          'unavailable',
          `${r.error.message} (Retry-After ${Math.round(r.retryAfterMs / 1000)} s: not called again until ` +
            `${new Date(this.rateLimitedUntil).toISOString()})`,
        );
      }
      if (!r.retry || attempt === this.retries) break;
      this.stats.retries++;
      const backoff = r.retryAfterMs ?? backoffDelay(attempt, { initialMs: 250, maxMs: 8_000 });
      // Ends with the caller (a stop, the scorer's deadline): a bare timer settled the call only when it ran out, up to
      // 30 s after a stop, and held the stopped process alive that long (Kubernetes' grace period is 30 s).
      const waited = await sleep(backoff, true, signal ? { signal } : {}).catch(() => false);
      if (!waited) throw new SentimentError('timeout', 'caller gave up');
    }
    throw last!;
  }

  private async attempt(
    text: string,
    signal?: AbortSignal,
  ): Promise<
    | { ok: true; content: string }
    | { ok: false; error: SentimentError; retry: boolean; retryAfterMs?: number }
  > {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
        },
        body: JSON.stringify({
          model: this.model,
          temperature: 0,
          max_tokens: this.maxTokens,
          messages: [
            { role: 'system', content: SYSTEM_PROMPT },
            { role: 'user', content: userPrompt(text) },
          ],
          response_format: {
            type: 'json_schema',
            json_schema: { name: 'news_sentiment', strict: true, schema: SENTIMENT_JSON_SCHEMA },
          },
        }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      return this.notAnswered(err, timeout, signal, `cannot reach ${this.url}`);
    }
    let body: string;
    try {
      body = await boundedText(res, MAX_ANSWER_BYTES);
    } catch (err) {
      // The status came, the body did not whole. Read as '' before, a body that stalled until the time-out was the
      // model's "invalid output" (response is not JSON), which opens no circuit: a server hanging after its headers
      // cost every text the whole time-out, for ever. It is the server's lateness (or its connection's failure).
      // An error page too large to read is still the server's failure (below), not an answer of the model's: taken as
      // invalid output it was not retried and counted as a success, so the circuit never opened (h128's review).
      if (err instanceof BodyTooLargeError && res.ok)
        return {
          ok: false,
          retry: false,
          error: new SentimentError('invalid-output', `response ${err.message} (HTTP ${res.status})`),
        };
      if (res.ok) return this.notAnswered(err, timeout, signal, `the answer from ${this.url} was cut`);
      body = '';
    }
    if (!res.ok) {
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      const transient = res.status === 429 || res.status >= 500;
      return {
        ok: false,
        retry: transient,
        ...(transient && retryAfter ? { retryAfterMs: retryAfter } : {}),
        error: new SentimentError(
          'unavailable',
          `HTTP ${res.status} from ${this.url}: ${redactSecrets(body.slice(0, 200))}`,
        ),
      };
    }
    let content: unknown;
    try {
      content = (JSON.parse(body) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]
        ?.message?.content;
    } catch {
      return { ok: false, retry: false, error: new SentimentError('invalid-output', 'response is not JSON') };
    }
    if (typeof content !== 'string')
      return {
        ok: false,
        retry: false,
        error: new SentimentError('invalid-output', 'response has no choices[0].message.content'),
      };
    return { ok: true, content };
  }

  /** A request that ended without a whole answer: its time-out (`timeout`), the caller's signal, or the network. */
  private notAnswered(
    err: unknown,
    timeout: AbortSignal,
    signal: AbortSignal | undefined,
    what: string,
  ): { ok: false; error: SentimentError; retry: boolean } {
    const timedOut = timeout.aborted;
    return {
      ok: false,
      retry: !signal?.aborted,
      error: new SentimentError(
        timedOut ? 'timeout' : 'unavailable',
        timedOut
          ? `no answer within ${this.timeoutMs} ms`
          : `${what}: ${(err as Error).cause ?? (err as Error).message}`,
        { cause: err },
      ),
    };
  }
}
