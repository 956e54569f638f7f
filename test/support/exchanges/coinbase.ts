import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebSocket } from 'ws';
import { ExchangeServer } from './base.ts';

/** One trade as Coinbase Advanced Trade sends it (all strings). */
export interface CoinbaseTrade {
  trade_id: string;
  product_id: string;
  price: string;
  size: string;
  side: 'BUY' | 'SELL';
  time: string;
}

interface Client {
  /** `sequence_num` of the next message on this connection. */
  seq: number;
  heartbeatCounter: number;
  channels: Map<string, Set<string>>;
}

/**
 * Coinbase Advanced Trade stand-in (docs.cdp.coinbase.com; channels `market_trades`, `heartbeats`,
 * `subscriptions`). Every message is an envelope `{channel, client_id, timestamp, sequence_num, events}` with
 * `sequence_num` counting the messages of the connection (when `muted`, numbers are used up by messages never
 * sent, so the client sees the jump). `{"type":"subscribe","product_ids":[…],"channel":…}` ⇒ a
 * `subscriptions` message, and for `market_trades` a `snapshot` event of the last 50 trades; then `update`s.
 * `heartbeats` tick every `heartbeatMs` with a per-connection `heartbeat_counter` (or, with `heartbeatMs` 0, only
 * when the test calls `heartbeat()`). REST public market trades
 * `GET /api/v3/brokerage/market/products/{id}/ticker?limit=&start=&end=` (whole seconds, inclusive; `endExclusive`), newest
 * first, the newest `limit` of the window; HTTP 429 when rate limited.
 */
export class CoinbaseServer extends ExchangeServer {
  readonly history: CoinbaseTrade[] = [];
  heartbeatMs = 1_000;
  /**
   * REST `end` read as an exclusive instant (trades before `end` s) instead of the whole second (through `end`.999 s):
   * the endpoint's documentation says neither, and a refill must be right, or say what it lost, under both readings.
   */
  endExclusive = false;
  /** Heartbeat ticks so far. */
  heartbeats = 0;
  private readonly clients = new Map<WebSocket, Client>();
  private timer: NodeJS.Timeout | undefined;

  override async listen(): Promise<this> {
    await super.listen();
    if (this.heartbeatMs > 0) this.timer = setInterval(() => this.heartbeat(), this.heartbeatMs);
    return this;
  }

  /** One heartbeat to every client subscribed to `heartbeats` (used up, unsent, when muted). */
  heartbeat(): void {
    if (this.silent) return;
    this.heartbeats++;
    for (const [ws, c] of this.clients)
      if (c.channels.has('heartbeats'))
        this.envelope(ws, 'heartbeats', [
          { current_time: heartbeatTime(new Date()), heartbeat_counter: ++c.heartbeatCounter },
        ]);
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    await super.close();
  }

  /** Records trades (REST sees them) and sends them as one `update` to subscribers of their products. */
  publish(trades: CoinbaseTrade[]): void {
    this.history.push(...trades);
    if (this.silent) return;
    for (const [ws, c] of this.clients) {
      const mine = trades.filter((t) => c.channels.get('market_trades')?.has(t.product_id));
      if (mine.length > 0) this.envelope(ws, 'market_trades', [{ type: 'update', trades: mine }]);
    }
  }

  /** Records trades without sending them: they happened, no client saw them. */
  record(trades: CoinbaseTrade[]): void {
    this.history.push(...trades);
  }

  private envelope(ws: WebSocket, channel: string, events: unknown[]): void {
    const c = this.clients.get(ws);
    if (c === undefined) return;
    const msg = {
      channel,
      client_id: '',
      timestamp: new Date().toISOString(),
      sequence_num: c.seq++,
      events,
    };
    if (!this.muted && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  protected onConnect(ws: WebSocket): void {
    this.clients.set(ws, { seq: 0, heartbeatCounter: 0, channels: new Map() });
    ws.on('close', () => this.clients.delete(ws));
  }

  protected onClientMessage(ws: WebSocket, msg: unknown): void {
    const m = msg as { type?: string; product_ids?: unknown; channel?: unknown };
    const c = this.clients.get(ws);
    const known = m.channel === 'market_trades' || m.channel === 'heartbeats';
    if (c === undefined || m.type !== 'subscribe' || !known || !Array.isArray(m.product_ids)) {
      ws.send(JSON.stringify({ type: 'error', message: 'Failure to subscribe' }));
      return;
    }
    const channel = m.channel as string;
    const products = new Set([...(c.channels.get(channel) ?? []), ...(m.product_ids as string[])]);
    c.channels.set(channel, products);
    const subscriptions = Object.fromEntries([...c.channels].map(([k, v]) => [k, [...v]]));
    this.envelope(ws, 'subscriptions', [{ subscriptions }]);
    if (channel === 'market_trades') {
      const recent = this.history.filter((t) => products.has(t.product_id)).slice(-50);
      this.envelope(ws, 'market_trades', [{ type: 'snapshot', trades: recent }]);
    }
  }

  protected rest(url: URL, _req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/api\/v3\/brokerage\/market\/products\/([A-Z0-9]+-[A-Z0-9]+)\/ticker$/.exec(url.pathname);
    if (!m) return void this.json(res, 404, { error: 'NOT_FOUND', message: 'route not found' });
    const limit = Number(url.searchParams.get('limit'));
    if (!Number.isInteger(limit) || limit < 1)
      return void this.json(res, 400, { error: 'INVALID_ARGUMENT', message: 'limit is required' });
    const start = Number(url.searchParams.get('start') ?? 0) * 1000;
    const end = url.searchParams.has('end')
      ? Number(url.searchParams.get('end')) * 1000 + (this.endExclusive ? -1 : 999)
      : Infinity;
    const trades = this.history
      .filter((t) => t.product_id === m[1])
      .filter((t) => Date.parse(t.time) >= start && Date.parse(t.time) <= end)
      .slice(-limit)
      .reverse()
      .map((t) => ({ ...t, bid: '', ask: '', exchange: 'coinbase' }));
    this.json(res, 200, { trades, best_bid: '', best_ask: '' });
  }

  protected rateLimited(res: ServerResponse): void {
    this.json(res, 429, { error: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests' });
  }
}

/**
 * A heartbeat's `current_time` as Coinbase writes it (exchange-protocols.md §6, from a recording):
 * `2026-04-07 14:30:10.000000000+00:00` — not RFC 3339 as the trades' `time` is.
 */
function heartbeatTime(d: Date): string {
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.(\d{3})Z$/, '.$1000000+00:00');
}
