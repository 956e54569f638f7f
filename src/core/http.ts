import { setTimeout as sleep } from 'node:timers/promises';
import { CryptocastError, ERR, fail } from './errors.ts';
import type { Logger } from './log.ts';
import { type Backoff, backoffDelay, parseRetryAfter } from './retry.ts';
import { redactSecrets } from './secrets.ts';

/**
 * Generic HTTP of the sources that poll a JSON API (exchange REST trades for live refills and backfills). URLs in
 * errors and logs are passed through `redactSecrets` (tokens in query strings, passwords in URLs).
 */

/** An answer that retrying will not mend (4xx other than 429/418, or a body that is not JSON). */
export class HttpError extends CryptocastError {
  override readonly name = 'HttpError';
  readonly status: number;
  constructor(message: string, status: number) {
    super(ERR.UPSTREAM.code, message, { exitCode: ERR.UPSTREAM.exitCode, hint: ERR.UPSTREAM.hint });
    this.status = status;
  }
}

export interface GetJsonOptions {
  signal?: AbortSignal;
  log?: Logger;
  retries?: number;
  backoff?: Backoff;
  headers?: Record<string, string>;
  isRateLimited?(body: unknown): boolean;
  timeoutMs?: number;
  /** JSON.parse reviver; gets the number's source text as `context.source` (exact decimals). */
  reviver?(key: string, value: unknown, context?: { source?: string }): unknown;
  onRetry?(attempt: number, reason: string, delayMs: number): void;
  /**
   * Retries while no attempt has had any HTTP answer (nothing listening, a name that does not resolve): default
   * `retries`. A caller that has never reached the server (the first request of a backfill) gives up sooner: a
   * mistyped URL is said in seconds, not after minutes of back-off.
   */
  unansweredRetries?: number | undefined;
  /**
   * The longest `Retry-After` waited out; a longer one fails the call at once (default: no limit). A caller that holds
   * a live stream while it waits (a connector's refill) cannot sleep through an IP ban of hours (Binance's 418).
   */
  maxRetryAfterMs?: number;
  /** The largest body read (default `MAX_JSON_BODY_BYTES`); a larger one fails the call, unread past the limit. */
  maxBodyBytes?: number;
}

/**
 * An exchange's REST page is at most a few hundred KB (1,000 trades): a body past this is a broken upstream, and read
 * whole it could take the process's memory.
 */
export const MAX_JSON_BODY_BYTES = 16 * 1024 * 1024;

const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 60_000 };

/**
 * GET a JSON document with retries: network errors, HTTP 429/418 and 5xx, and exchange-level transient errors
 * in a 200 body (`isRateLimited(body)`, e.g. Kraken's `EAPI:Rate limit exceeded`) back off exponentially with
 * jitter (honouring `Retry-After`), up to `retries` times. Other HTTP errors fail at once with the status and
 * the start of the body: retrying a 400 only burns rate-limit budget.
 */
export async function getJson(url: string, o: GetJsonOptions = {}): Promise<unknown> {
  const retries = o.retries ?? 8;
  let answered = false;
  for (let attempt = 0; ; attempt++) {
    let reason: string;
    let retryAfterMs: number | undefined;
    try {
      const signal = AbortSignal.any([
        o.signal ?? new AbortController().signal,
        AbortSignal.timeout(o.timeoutMs ?? 15_000),
      ]);
      const res = await fetch(url, { headers: { accept: 'application/json', ...o.headers }, signal });
      answered = true;
      const maxBytes = o.maxBodyBytes ?? MAX_JSON_BODY_BYTES;
      const text = await boundedText(res, maxBytes).catch((err: Error) => {
        // Not retried: the same request would bring the same body (a reset mid-body stays a network error).
        if (err instanceof BodyTooLargeError)
          throw new HttpError(`GET ${redactSecrets(url)}: HTTP ${res.status}: ${err.message}`, res.status);
        throw err;
      });
      if (res.status === 429 || res.status === 418 || res.status >= 500) {
        reason = `HTTP ${res.status}`;
        retryAfterMs = parseRetryAfter(res.headers.get('retry-after')) || undefined;
      } else if (!res.ok) {
        throw new HttpError(
          `GET ${redactSecrets(url)}: HTTP ${res.status}: ${redactSecrets(text.slice(0, 300))}`,
          res.status,
        );
      } else {
        let body: unknown;
        try {
          body = o.reviver ? JSON.parse(text, o.reviver as never) : JSON.parse(text);
        } catch {
          throw new HttpError(
            `GET ${redactSecrets(url)}: response is not JSON: ${redactSecrets(text.slice(0, 200))}`,
            res.status,
          );
        }
        if (!o.isRateLimited?.(body)) return body;
        reason = 'rate limited by the exchange';
      }
    } catch (err) {
      if (err instanceof HttpError || o.signal?.aborted) throw err;
      reason = `network: ${networkReason(err)}`;
    }
    if (retryAfterMs !== undefined && o.maxRetryAfterMs !== undefined && retryAfterMs > o.maxRetryAfterMs)
      throw fail(
        ERR.UPSTREAM,
        `GET ${redactSecrets(url)}: ${reason}, retry after ${Math.round(retryAfterMs / 1000)} s: longer than the ${Math.round(o.maxRetryAfterMs / 1000)} s this caller waits`,
      );
    if (!answered && attempt >= Math.min(retries, o.unansweredRetries ?? retries))
      throw fail(
        ERR.UPSTREAM,
        `GET ${redactSecrets(url)}: nothing answered in ${attempt + 1} attempts: ${reason}`,
        { hint: 'check the URL (host, port, --base-url) and that the server is up' },
      );
    if (attempt >= retries)
      throw fail(ERR.UPSTREAM, `GET ${redactSecrets(url)} failed after ${attempt + 1} attempts: ${reason}`);
    const delay = retryAfterMs ?? backoffDelay(attempt, o.backoff ?? DEFAULT_BACKOFF);
    o.onRetry?.(attempt + 1, reason, delay);
    o.log?.warn(
      { url: redactSecrets(url), attempt: attempt + 1, reason, delayMs: Math.round(delay) },
      'retrying',
    );
    await sleep(delay, undefined, { signal: o.signal });
  }
}

/** An error's message with its causes' (undici's "fetch failed" says why only in `cause`: ECONNREFUSED, ENOTFOUND…). */
export function networkReason(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = e.cause)
    if (!parts.includes(e.message)) parts.push(e.message);
  return redactSecrets(parts.join(': ') || String(err));
}

/** A body past the size its reader accepts (`boundedText`). */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/** The body as text, or an error as soon as it is known to pass `maxBytes` (the rest is not read). */
export async function boundedText(res: Awaited<ReturnType<typeof fetch>>, maxBytes: number): Promise<string> {
  const tooLarge = () => new BodyTooLargeError(`body larger than ${maxBytes} bytes`);
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!res.body) return '';
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += chunk.byteLength;
    if (bytes > maxBytes) {
      await res.body.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(Buffer.from(chunk));
  }
  return new TextDecoder().decode(Buffer.concat(chunks)); // as res.text(): UTF-8, a BOM dropped
}
