import { setTimeout as sleep } from 'node:timers/promises';
import { fetch } from 'undici'; // not Node's bundled copy: see src/data/binance-archive.ts
import { boundedText } from '../core/http.ts';
import { log as rootLog } from '../core/log.ts';
import { backoffCap, parseRetryAfter } from '../core/retry.ts';
import { redactSecrets } from '../core/secrets.ts';
import { summarise } from '../runtime/in-process-bus.ts';
import { validate } from '../runtime/validated.ts';
import { deadLetter } from '../schemas/dlq.ts';
import { type NewsItem, NewsItemSchema } from '../schemas/news.ts';
import {
  coinsIn,
  linkDropped,
  newsId,
  normaliseUrl,
  parseDateUtc,
  plainText,
  publishedAtOf,
} from './normalise.ts';
import { MAX_FEED_BYTES, MAX_POLL_WAIT_MS, type NewsSink, type NewsSource } from './source.ts';

/**
 * CryptoPanic posts API (docs/exchange-protocols.md §7 — shapes from client libraries, the official page was not
 * available): `GET /api/developer/v2/posts/?auth_token=…&public=true&currencies=BTC,ETH&kind=news`, following `next`
 * up to `maxPages`. The token comes from the environment (`CRYPTOPANIC_TOKEN`) and never reaches a log (URLs are
 * redacted). Free plans have small quotas: a poll every 15 minutes by default, Retry-After honoured on 429; an
 * authentication error stops the source with a clear message instead of hammering the API. A poll that fails (HTTP
 * error, network, not a page of posts) is a dead letter with the reason, and the wait doubles with each failed poll
 * in a row (up to an hour), as an RSS feed's.
 */
export interface CryptoPanicOptions {
  token: string;
  baseUrl?: string;
  currencies?: readonly string[];
  intervalMs?: number;
  maxPages?: number;
  maxPolls?: number;
}

export class CryptoPanicSource implements NewsSource {
  readonly name = 'cryptopanic';
  readonly stats = { polls: 0, items: 0, errors: 0 };
  private readonly o: CryptoPanicOptions;
  private readonly log = rootLog.child({ source: 'cryptopanic' });

  constructor(o: CryptoPanicOptions) {
    if (!o.token) throw new Error('CryptoPanic needs an API token: set CRYPTOPANIC_TOKEN');
    this.o = o;
  }

  async run(sink: NewsSink, signal: AbortSignal): Promise<void> {
    const base = this.o.baseUrl ?? 'https://cryptopanic.com';
    const currencies = (this.o.currencies ?? ['BTC', 'ETH']).join(',');
    const interval = this.o.intervalMs ?? 900_000;
    // Polls failed in a row: the wait before the next grows with them (as an RSS feed's), unless Retry-After says.
    let failures = 0;
    for (let poll = 0; !signal.aborted && (this.o.maxPolls === undefined || poll < this.o.maxPolls); poll++) {
      /** Why this poll failed (dead-lettered already, or to be by `failedPoll`), and the server's Retry-After. */
      let failed: { reason: string; retryAfterMs?: number | undefined } | undefined;
      const failedPoll = async (reason: string, retryAfterMs?: number) => {
        this.stats.errors++;
        failed = { reason, retryAfterMs };
        await sink.reject(
          deadLetter({ service: 'news', origin: 'cryptopanic', kind: 'fetch', reason, payload: '' }),
        );
      };
      let url: string | null =
        `${base}/api/developer/v2/posts/?auth_token=${encodeURIComponent(this.o.token)}&public=true&kind=news&currencies=${currencies}`;
      this.stats.polls++;
      for (let page = 0; url && page < (this.o.maxPages ?? 3) && !signal.aborted; page++) {
        const res = await fetch(url, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(20_000)]),
        }).catch((err: Error) => err);
        if (res instanceof Error) {
          if (signal.aborted) break;
          await failedPoll(
            redactSecrets(`${res.message}${res.cause ? `: ${(res.cause as Error).message}` : ''}`),
          );
          break;
        }
        if (res.status === 401 || res.status === 403) {
          throw new Error(`CryptoPanic refused the token (HTTP ${res.status}): check CRYPTOPANIC_TOKEN`);
        }
        if (!res.ok) {
          // Throttled, failing, or not a page of posts (a 404's body was parsed as one: "not JSON", without the status).
          await res.body?.cancel().catch(() => {});
          await failedPoll(
            `HTTP ${res.status}`,
            res.status === 429 || res.status >= 500
              ? parseRetryAfter(res.headers.get('retry-after'))
              : undefined,
          );
          break;
        }
        let body: { results?: unknown[]; next?: string | null };
        try {
          // Bounded as a feed is: an endless or huge answer was read whole into memory.
          body = JSON.parse(await boundedText(res, MAX_FEED_BYTES)) as typeof body;
        } catch (err) {
          await sink.reject(
            deadLetter({
              service: 'news',
              origin: 'cryptopanic',
              kind: 'parse',
              reason: err instanceof SyntaxError ? `not JSON: ${err.message}` : (err as Error).message,
              payload: '',
            }),
          );
          failed = { reason: 'not a page of posts' };
          break;
        }
        if (body === null || typeof body !== 'object' || !Array.isArray(body.results)) {
          // JSON, but not a page of posts (null, an error object): reading `.results` of null crashed the source
          await sink.reject(
            deadLetter({
              service: 'news',
              origin: 'cryptopanic',
              kind: 'parse',
              reason: 'the answer has no results list',
              payload: redactSecrets(JSON.stringify(body) ?? ''),
            }),
          );
          failed = { reason: 'not a page of posts' };
          break;
        }
        const fetchedAt = Date.now();
        const items: NewsItem[] = [];
        let linksDropped = 0;
        for (const p of body.results as Record<string, unknown>[]) {
          const title = plainText(String(p?.title ?? ''));
          const summary = plainText(String(p?.description ?? ''));
          const link = String(p?.url ?? '');
          const url = normaliseUrl(link);
          const codes = Array.isArray(p?.currencies)
            ? (p.currencies as { code?: unknown }[]).map((c) => String(c?.code ?? '').toUpperCase())
            : [];
          const r = validate(NewsItemSchema, {
            v: 1,
            id: newsId('cryptopanic', String(p?.id ?? p?.slug ?? title)),
            source:
              `cryptopanic:${String((p?.source as { domain?: unknown })?.domain ?? p?.domain ?? 'unknown')}`.slice(
                0,
                64,
              ),
            title,
            summary,
            url,
            publishedAt: publishedAtOf(parseDateUtc(String(p?.published_at ?? '')), fetchedAt),
            fetchedAt,
            coins: [
              ...new Set([
                ...codes.filter((c) => /^[A-Z0-9]{2,10}$/.test(c)),
                ...coinsIn(`${title} ${summary}`),
              ]),
            ].sort(),
          });
          if (r.success) {
            items.push(r.data);
            if (linkDropped(link, url)) linksDropped++;
          } else
            await sink.reject(
              deadLetter({
                service: 'news',
                origin: 'cryptopanic',
                kind: 'invalid',
                reason: summarise(r.error),
                payload: p,
              }),
            );
        }
        if (linksDropped > 0) sink.linksDropped?.(linksDropped);
        if (items.length > 0) await sink.news(items);
        this.stats.items += items.length;
        url = typeof body.next === 'string' && body.next.startsWith(base) ? body.next : null;
      }
      failures = failed === undefined ? 0 : failures + 1;
      // A Retry-After is a floor, not the wait: `Retry-After: 0` (or a date gone by) polled again at once, in a loop.
      const wait = Math.min(
        Math.max(
          failed?.retryAfterMs ?? 0,
          failures === 0 ? interval : backoffCap(failures, { initialMs: interval, maxMs: 3_600_000 }),
        ),
        MAX_POLL_WAIT_MS,
      );
      if (failed !== undefined)
        this.log.warn(
          { err: failed.reason, failures, retryInMs: wait },
          'poll failed: dead-lettered, polled again later',
        );
      if (this.o.maxPolls !== undefined && poll + 1 >= this.o.maxPolls) break;
      await sleep(wait, undefined, { signal }).catch(() => {});
    }
  }
}
