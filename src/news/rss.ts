import { setTimeout as sleep } from 'node:timers/promises';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { fetch } from 'undici'; // not Node's bundled copy: see src/data/binance-archive.ts
import { ERR, fail } from '../core/errors.ts';
import { boundedText } from '../core/http.ts';
import { log as rootLog } from '../core/log.ts';
import { backoffCap, parseRetryAfter } from '../core/retry.ts';
import { redactSecrets, urlWithoutCredentials } from '../core/secrets.ts';
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
 * RSS 2.0 and Atom feeds, polled politely: conditional GETs (ETag / If-Modified-Since, so an unchanged feed costs
 * a 304), a poll interval per feed (default 5 minutes, never below the feed's own `ttl`), and back-off on errors
 * and HTTP 429/5xx (honouring Retry-After). Items are keyed by guid (else the normalised link); HTML and CDATA are
 * stripped. A feed that fails to parse, or whose body passes MAX_FEED_BYTES, is dead-lettered and polled again later,
 * unconditionally (its ETag / Last-Modified are kept only once a body was parsed and its items handed over); the others
 * carry on.
 */
export interface RssOptions {
  feeds: readonly { url: string; source?: string }[];
  intervalMs?: number;
  /** Stop after this many polls per feed (tests); default: until aborted. */
  maxPolls?: number;
  userAgent?: string;
}

export const DEFAULT_FEEDS = [
  { url: 'https://www.coindesk.com/arc/outboundfeeds/rss/', source: 'CoinDesk' },
  { url: 'https://cointelegraph.com/rss', source: 'Cointelegraph' },
  { url: 'https://decrypt.co/feed', source: 'Decrypt' },
  { url: 'https://bitcoinmagazine.com/.rss/full/', source: 'Bitcoin Magazine' },
];

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  cdataPropName: false,
  processEntities: true,
  htmlEntities: true,
});

interface FeedState {
  etag?: string;
  lastModified?: string;
  failures: number;
}

/**
 * A feed URL that does not parse, or is not http(s), is refused here as CC_ERR_CONFIG naming it (without its
 * credentials). The CLI checks --feeds first; built elsewhere (the embedded runtime, a program of one's own) the URL
 * parser's bare TypeError ("Invalid URL") named neither the feed nor the setting, and an ftp: feed failed every poll.
 */
function checkFeedUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw fail(
      ERR.CONFIG,
      `rss: the feed URL "${urlWithoutCredentials(url)}" is not a URL (e.g. https://host/rss)`,
    );
  }
  if (protocol !== 'http:' && protocol !== 'https:')
    throw fail(ERR.CONFIG, `rss: the feed URL "${urlWithoutCredentials(url)}" is not http(s)`);
}

export class RssSource implements NewsSource {
  readonly name = 'rss';
  readonly stats = { polls: 0, notModified: 0, items: 0, errors: 0 };
  private readonly o: RssOptions;
  private readonly log = rootLog.child({ source: 'rss' });

  constructor(o: RssOptions) {
    // A setting's error, as a bad URL is: a bare Error reached the CLI as a bug (its stack, exit 1). The CLI never
    // builds one without feeds (no --feeds, no CRYPTOCAST_NEWS_FEEDS: the defaults); a program of one's own may.
    if (o.feeds.length === 0)
      throw fail(ERR.CONFIG, 'rss: no feed to poll: an RSS source needs at least one feed URL', {
        hint: 'give RSS/Atom URLs (--feeds or CRYPTOCAST_NEWS_FEEDS, comma separated), or leave both out for the default feeds (DEFAULT_FEEDS)',
      });
    for (const f of o.feeds) checkFeedUrl(f.url);
    this.o = o;
  }

  async run(sink: NewsSink, signal: AbortSignal): Promise<void> {
    await Promise.all(
      this.o.feeds.map((f) => this.follow(f.url, f.source ?? new URL(f.url).hostname, sink, signal)),
    );
  }

  private async follow(url: string, source: string, sink: NewsSink, signal: AbortSignal): Promise<void> {
    const state: FeedState = { failures: 0 };
    // A private feed's URL may carry a token in its query: dead letters go on the bus unredacted, so say which
    // feed it was without it.
    const feedShown = redactSecrets(url);
    let interval = this.o.intervalMs ?? 300_000;
    for (let poll = 0; !signal.aborted && (this.o.maxPolls === undefined || poll < this.o.maxPolls); poll++) {
      let wait = interval;
      try {
        const ttlMs = await this.pollOnce(url, feedShown, source, state, sink, signal);
        if (ttlMs !== undefined)
          interval = Math.min(Math.max(this.o.intervalMs ?? 300_000, ttlMs), MAX_POLL_WAIT_MS);
        state.failures = 0;
        wait = interval;
      } catch (err) {
        if (signal.aborted) break;
        this.stats.errors++;
        state.failures++;
        const retryAfter = (err as { retryAfterMs?: number }).retryAfterMs;
        wait = Math.min(
          retryAfter ?? backoffCap(state.failures, { initialMs: interval, maxMs: 3_600_000 }),
          MAX_POLL_WAIT_MS,
        );
        this.log.warn({ feed: url, err: (err as Error).message, retryInMs: wait }, 'feed poll failed');
        await sink.reject(
          deadLetter({
            service: 'news',
            origin: `rss:${feedShown}`,
            kind: 'fetch',
            reason: redactSecrets((err as Error).message),
            payload: feedShown,
          }),
        );
      }
      if (this.o.maxPolls !== undefined && poll + 1 >= this.o.maxPolls) break;
      await sleep(wait, undefined, { signal }).catch(() => {});
    }
  }

  /** One conditional GET; returns the feed's ttl in ms if it states one. */
  private async pollOnce(
    url: string,
    feedShown: string,
    source: string,
    state: FeedState,
    sink: NewsSink,
    signal: AbortSignal,
  ): Promise<number | undefined> {
    this.stats.polls++;
    const headers: Record<string, string> = {
      'user-agent': this.o.userAgent ?? 'cryptocast (+https://github.com/cryptocast)',
      accept: 'application/rss+xml, application/atom+xml, application/xml, text/xml',
    };
    if (state.etag) headers['if-none-match'] = state.etag;
    if (state.lastModified) headers['if-modified-since'] = state.lastModified;
    const res = await fetch(url, { headers, signal: AbortSignal.any([signal, AbortSignal.timeout(20_000)]) });
    if (res.status === 304) {
      this.stats.notModified++;
      return undefined;
    }
    if (res.status === 429 || res.status >= 500) {
      const ra = parseRetryAfter(res.headers.get('retry-after'));
      throw Object.assign(new Error(`HTTP ${res.status}`), { retryAfterMs: ra || undefined });
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await boundedText(res, MAX_FEED_BYTES);
    const fetchedAt = Date.now();
    const { items, ttlMs, linksDropped } = parseFeed(body, source, fetchedAt);
    for (const r of items.rejects)
      await sink.reject(
        deadLetter({
          service: 'news',
          origin: `rss:${feedShown}`,
          kind: 'parse',
          reason: r.reason,
          payload: r.payload,
        }),
      );
    if (linksDropped > 0) sink.linksDropped?.(linksDropped);
    if (items.ok.length > 0) await sink.news(items.ok);
    this.stats.items += items.ok.length;
    // Kept only now, the body parsed and its items handed over: kept before, a body cut short in transit (or a sink
    // that failed) was answered 304 at every later poll, its items never read until the feed itself changed.
    state.etag = res.headers.get('etag') ?? undefined;
    state.lastModified = res.headers.get('last-modified') ?? undefined;
    return ttlMs;
  }
}

/** RSS 2.0 `<item>`s or Atom `<entry>`s → news items (pure; exported for tests and fuzzing). */
export function parseFeed(
  xml: string,
  source: string,
  fetchedAt: number,
): {
  items: { ok: NewsItem[]; rejects: { reason: string; payload: string }[] };
  ttlMs?: number;
  /** Items kept without their link: not an http(s) URL (`normaliseUrl`). */
  linksDropped: number;
} {
  const out = { ok: [] as NewsItem[], rejects: [] as { reason: string; payload: string }[] };
  let linksDropped = 0;
  let doc: Record<string, unknown>;
  // The parser is lenient (it would read a truncated document): insist on well-formed XML first.
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  try {
    doc = parser.parse(xml) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`not XML: ${(err as Error).message}`);
  }
  const rss = doc.rss as { channel?: Record<string, unknown> } | undefined;
  const feed = doc.feed as Record<string, unknown> | undefined;
  if (!rss?.channel && !feed) throw new Error('neither an RSS channel nor an Atom feed');
  const list = (x: unknown) =>
    (Array.isArray(x) ? x : x === undefined ? [] : [x]) as Record<string, unknown>[];
  const text = (x: unknown): string =>
    typeof x === 'string' || typeof x === 'number'
      ? String(x)
      : x && typeof x === 'object' && '#text' in x
        ? String((x as { '#text': unknown })['#text'])
        : '';
  const entries = rss?.channel ? list(rss.channel.item) : list(feed!.entry);
  for (const e of entries) {
    const link = rss
      ? text(e.link)
      : String(list(e.link).find((l) => !l['@rel'] || l['@rel'] === 'alternate')?.['@href'] ?? '');
    const guid = text(rss ? e.guid : e.id);
    const title = plainText(text(e.title));
    const summary = plainText(
      text(rss ? (e.description ?? e['content:encoded']) : (e.summary ?? e.content)),
    ).slice(0, 10_000);
    const dateText = text(rss ? (e.pubDate ?? e['dc:date']) : (e.published ?? e.updated));
    const publishedAt = dateText ? publishedAtOf(parseDateUtc(dateText), fetchedAt) : fetchedAt;
    const url = normaliseUrl(link);
    const r = validate(NewsItemSchema, {
      v: 1,
      id: newsId(source, guid || url || title),
      source,
      title,
      summary,
      url,
      publishedAt: Number.isFinite(publishedAt) ? publishedAt : Number.NaN,
      fetchedAt,
      coins: coinsIn(`${title} ${summary}`),
    });
    if (r.success) {
      out.ok.push(r.data);
      if (linkDropped(link, url)) linksDropped++;
    } else out.rejects.push({ reason: summarise(r.error), payload: JSON.stringify(e).slice(0, 5_000) });
  }
  const ttl = Number(text(rss?.channel?.ttl));
  return { items: out, ttlMs: Number.isFinite(ttl) && ttl > 0 ? ttl * 60_000 : undefined, linksDropped };
}
