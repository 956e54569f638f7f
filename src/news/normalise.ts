import { createHash } from 'node:crypto';

/**
 * Text and identity rules shared by every news source: plain text out of HTML/CDATA, URLs without tracking
 * parameters, ids from guids or URLs, near-duplicate titles, coin mentions.
 */
const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  '#39': "'",
};

export function plainText(html: string): string {
  return html
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1')
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (m, e: string) => {
      if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
      if (e.startsWith('#')) return ENTITIES[e] ?? String.fromCodePoint(Number(e.slice(1)));
      return ENTITIES[e.toLowerCase()] ?? m;
    })
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Lower-cased host, no fragment, no tracking parameters (utm_*, ref, …), no trailing slash — or '' when it is not an
 * absolute http(s) URL. A feed's link is served as is (`/v1/news`) to clients that may make it a link: a
 * `javascript:` or `data:` one (any feed may write one) would run in the page of whichever client did, and anything
 * unparsable is no link to anywhere either. The item is kept, without its link (`linkDropped`).
 */
export function normaliseUrl(url: string): string {
  try {
    const u = new URL(url.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return '';
    u.hash = '';
    for (const k of [...u.searchParams.keys()])
      if (/^(utm_|ref$|referrer$|fbclid$|gclid$|mc_)/i.test(k)) u.searchParams.delete(k);
    u.hostname = u.hostname.toLowerCase().replace(/^www\./, '');
    const s = u.toString();
    return s.endsWith('/') ? s.slice(0, -1) : s;
  } catch {
    return '';
  }
}

/** Whether a source's link was dropped by `normaliseUrl` (there was one, and it is not an http(s) URL). */
export function linkDropped(raw: string, kept: string): boolean {
  return kept === '' && raw.trim() !== '';
}

/**
 * The publication time to keep: the publisher's claim, but never after cryptocast fetched the item — a claim past
 * that is wrong (a year typo, local time sent as GMT), and a future-dated item stayed first in the latest news
 * (sorted by publication) for as long as it was in the future.
 */
export function publishedAtOf(claimedMs: number, fetchedAt: number): number {
  return Number.isFinite(claimedMs) ? Math.min(claimedMs, fetchedAt) : claimedMs;
}

/**
 * A feed's date as epoch ms. A date and time that name no zone (RSS and Atom require one; some feeds leave it out)
 * is read as UTC: Date.parse reads it in the process's local zone, so the same item had another publishedAt on a
 * machine set to another zone (9 h earlier in Asia/Tokyo).
 */
export function parseDateUtc(text: string): number {
  const t = text.trim();
  // ends in a time (after the date's T or a space, so a +01:00 offset is not one)
  if (!/[T\s]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(t)) return Date.parse(t);
  return /^\d{4}-\d{2}-\d{2}[T ]/.test(t) ? Date.parse(`${t.replace(' ', 'T')}Z`) : Date.parse(`${t} GMT`);
}

export function newsId(source: string, guidOrUrl: string): string {
  return createHash('sha256').update(`${source}\u0000${guidOrUrl}`).digest('hex').slice(0, 32);
}

/**
 * A title reduced to its words, for near-duplicate detection across sources. Short words go (a, of, to…), numbers
 * stay whatever their length: they are what tells a series apart ("Price analysis 7/1" and "7/4", "Week 25" and
 * "Week 26" are different articles, and were dropped as copies of the first).
 */
export function titleKey(title: string): string {
  return plainText(title)
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 2 || /\p{N}/u.test(w))
    .join(' ');
}

const COINS: [string, RegExp][] = [
  ['BTC', /\b(btc|xbt|bitcoin'?s?)\b/i],
  ['ETH', /\b(eth|ether|ethereum'?s?)\b/i],
  ['SOL', /\b(sol|solana)\b/i],
  ['XRP', /\b(xrp|ripple)\b/i],
  ['ADA', /\b(ada|cardano)\b/i],
  ['DOGE', /\b(doge|dogecoin)\b/i],
  ['BNB', /\b(bnb|binance coin)\b/i],
  ['DOT', /\b(polkadot)\b/i],
  ['AVAX', /\b(avax|avalanche)\b/i],
  ['LTC', /\b(ltc|litecoin)\b/i],
  ['LUNA', /\b(luna|terra)\b/i],
  ['USDT', /\b(usdt|tether)\b/i],
  ['USDC', /\b(usdc)\b/i],
];

/** Coins the text mentions, by ticker or name. */
export function coinsIn(text: string): string[] {
  return COINS.filter(([, re]) => re.test(text))
    .map(([c]) => c)
    .sort();
}
