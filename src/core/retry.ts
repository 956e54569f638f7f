/**
 * The one retry policy: capped exponential back-off with full jitter, and the server's `Retry-After` honoured in
 * both of its HTTP forms (delta-seconds, or an HTTP-date). Callers keep their own loop (they differ in what is
 * retryable); the delays come from here.
 */
export interface Backoff {
  /** First delay (ms). */
  initialMs: number;
  /** Largest delay (ms). */
  maxMs: number;
}

/**
 * The capped exponential delay before retry number `attempt` (0-based), without jitter: min(maxMs, initialMs ×
 * 2^attempt). For a loop that is the only one retrying against its dependency (one consumer re-reading its
 * partition, one publisher holding its source back), where a spread buys nothing and a fixed figure reads better
 * in the log.
 */
export function backoffCap(attempt: number, b: Backoff): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
}

/**
 * The delay before retry number `attempt` (0-based): a random value in [cap / 2, cap] where cap =
 * `backoffCap(attempt)` — spread so that many clients failing together do not retry together, and never below
 * half the cap so that the back-off still grows.
 */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  const cap = backoffCap(attempt, b);
  return Math.round(cap / 2 + (cap / 2) * random());
}

/**
 * A `Retry-After` header in milliseconds from `now`: `120` (seconds, fractions allowed) or
 * `Wed, 21 Oct 2015 07:28:00 GMT` (an HTTP-date). Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (!Number.isFinite(at) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, at - now);
}
