import { setTimeout as sleep } from 'node:timers/promises';
import type { Trade } from '../../schemas/trade.ts';
import { REFILL_OVERLAP_MS } from '../resume-points.ts';
import { assertPairs, krakenRestPair, krakenWsSymbol } from '../symbols.ts';
import {
  DEFAULT_MAX_REFILL_PAGES,
  type ExchangeAdapter,
  keepingFetchedPages,
  type LiveSourceOptions,
  REFILL_MAX_RETRY_AFTER_MS,
  type RefillRequest,
  type RefillResult,
} from './adapter.ts';
import { parseKrakenFrame } from './kraken-parser.ts';
import { KrakenTimeCursor, STEPPED_PAST_FULL_INSTANT, steppedPastInstant } from './kraken-time-cursor.ts';
import { fetchKrakenTrades, KRAKEN_REST_URL, msToNs } from './kraken-trades-api.ts';
import { assertUrl, LiveTradeSource } from './live-source.ts';

export const KRAKEN_WS_URL = 'wss://ws.kraken.com/v2';

export interface KrakenWsOptions extends LiveSourceOptions {
  /** Default `wss://ws.kraken.com/v2`. */
  wsUrl?: string;
  /** REST base for refills, default `https://api.kraken.com`. */
  restUrl?: string;
  /** Ask for the 50 most recent trades on (re)subscribe (default true: it anchors gap detection at once). */
  snapshot?: boolean;
  /** Application ping interval (default 30 s; Kraken's recommendation is unconfirmed). */
  appPingIntervalMs?: number;
  /** Pause between REST pages of one refill (default 1 000 ms: Kraken's public budget is ~1 request/s). */
  restMinIntervalMs?: number;
}

/**
 * Kraken Spot WebSocket v2 `trade` channel. Trade ids are consecutive per pair, so a jump is a gap; gaps and
 * outages are refilled from REST `Trades` (time cursor `since`, ns), de-duplicated by id.
 */
export class KrakenWsSource extends LiveTradeSource {
  constructor(options: KrakenWsOptions) {
    super(krakenAdapter(options), options);
  }
}

export function krakenAdapter(o: KrakenWsOptions): ExchangeAdapter {
  const rest = o.restUrl ?? KRAKEN_REST_URL;
  assertUrl(rest, ['http:', 'https:']);
  assertPairs('kraken', o.pairs);
  // Refills need a REST name for every pair: unknown ones fail now, not during an outage.
  for (const p of o.pairs) krakenRestPair(p);
  let reqId = 0;
  // Pages of every refill of this connector keep Kraken's pace: a refill is read a few pages at a time now (the frames
  // handled in between), and the next few must not follow the last at once.
  const pace = { lastPageAt: Number.NEGATIVE_INFINITY };
  return {
    exchange: 'kraken',
    url: o.wsUrl ?? KRAKEN_WS_URL,
    contiguousIds: true,
    acksNamePairs: true,
    // Heartbeats come every second when nothing else does: 15 s of nothing is a dead connection.
    idleTimeoutMs: 15_000,
    appPing: {
      intervalMs: o.appPingIntervalMs ?? 30_000,
      frame: () => JSON.stringify({ method: 'ping', req_id: ++reqId }),
    },
    subscribeFrames: (pairs) => [
      JSON.stringify({
        method: 'subscribe',
        params: { channel: 'trade', symbol: pairs.map(krakenWsSymbol), snapshot: o.snapshot ?? true },
        req_id: ++reqId,
      }),
    ],
    parse: parseKrakenFrame,
    refill: (req) => krakenRefill(rest, o, req, pace),
  };
}

/**
 * Pages `Trades` from just before the last known trade until the gap is closed or the present reached, by the rule
 * of `KrakenTimeCursor` (1 ns before each page's last trade; an instant that fills a page asked past once). Each page's
 * new trades go to `req.onPage` before the next is asked for, where given (one page held at a time).
 */
async function krakenRefill(
  rest: string,
  o: KrakenWsOptions,
  req: RefillRequest,
  pace: { lastPageAt: number },
): Promise<RefillResult> {
  const out: RefillResult = { trades: [], rejects: [], complete: false };
  const from = req.goOnFrom instanceof KrakenRefillPosition ? req.goOnFrom : undefined;
  // `since` may be exclusive (unconfirmed): start 1 ms before the last trade; the overlap is dropped by id. Without an
  // id to go from (a restart resumed from a stored minute's end: a watermark), a second before, as every refill by time
  // asks (REFILL_OVERLAP_MS): a trade of that second the earlier process never took comes too, late as it would have
  // been without the restart; those it took are known by the stored minute's `closingTradeIds`.
  let since = from?.since ?? msToNs(req.sinceTs - (req.afterId !== undefined ? 1 : REFILL_OVERLAP_MS));
  let maxId = Math.max(req.afterId ?? -1, from?.maxId ?? -1);
  const paging = from?.paging ?? new KrakenTimeCursor();
  const maxPages = req.maxPages ?? o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES;
  return keepingFetchedPages(out, req.signal, async () => {
    for (let page = 0; page < maxPages; page++) {
      const wait = pace.lastPageAt + (o.restMinIntervalMs ?? 1_000) - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal: req.signal });
      let r: Awaited<ReturnType<typeof fetchKrakenTrades>>;
      try {
        r = await fetchKrakenTrades(rest, req.pair, since, {
          signal: req.signal,
          log: req.log,
          backoff: o.restBackoff,
          retries: req.retries ?? o.restRetries,
          maxRetryAfterMs: REFILL_MAX_RETRY_AFTER_MS,
        });
      } finally {
        pace.lastPageAt = Date.now();
      }
      const fresh = r.trades.filter((t) => Number(t.tradeId) > maxId);
      // Pages come forward in time, ids above the last page's (`fresh`): handed over as they come, none kept.
      if (req.onPage !== undefined) await req.onPage({ trades: fresh, rejects: r.rejects });
      else {
        out.trades.push(...fresh);
        out.rejects.push(...r.rejects);
      }
      const before = maxId;
      maxId = Math.max(maxId, maxTradeId(fresh));
      const closed = req.untilId !== undefined && maxId >= req.untilId - 1;
      const step = paging.after(r.trades.length, fresh.length);
      // Said before the gap may close with this page: the ids skipped are missing all the same.
      if (paging.steppedPastFullInstant)
        req.log.warn(
          { pair: req.pair, since, ...steppedPastInstant(since, before, fresh) },
          `refill: ${STEPPED_PAST_FULL_INSTANT}`,
        );
      if (closed || step === 'end') {
        out.complete = true;
        break;
      }
      since = paging.since(r.last);
    }
    // Stopped at maxPages: the next call goes on from the same cursor (a restart from the pair's newest trade time, in
    // ms, would lose the ns cursor and whether it had stepped past an instant: the rest taken for the end).
    if (!out.complete) out.more = new KrakenRefillPosition(since, maxId, paging);
  });
}

/** Where a Kraken refill stopped at its page limit: its cursor, newest id and paging state (`RefillResult.more`). */
class KrakenRefillPosition {
  readonly since: string;
  readonly maxId: number;
  readonly paging: KrakenTimeCursor;
  constructor(since: string, maxId: number, paging: KrakenTimeCursor) {
    this.since = since;
    this.maxId = maxId;
    this.paging = paging;
  }
}

function maxTradeId(trades: readonly Trade[]): number {
  let m = -1;
  for (const t of trades) m = Math.max(m, Number(t.tradeId));
  return m;
}
