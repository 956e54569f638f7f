import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebSocket } from 'ws';
import { ExchangeServer } from './base.ts';

/** One Kraken trade as the exchange keeps it (decimal strings, as in the REST recording). */
export interface KrakenTrade {
  id: number;
  price: string;
  qty: string;
  /** Decimal seconds, e.g. "1762795433.9712345". */
  time: string;
  side: 'b' | 's';
  ordType: 'l' | 'm';
}

/**
 * Kraken stand-in. WebSocket v2 at `/v2` (docs.kraken.com spot-websocket-v2): `status` on connect;
 * `subscribe` to `trade` ⇒ one ack per symbol (`success:false` with an error for an unknown symbol, or for one the
 * connection already has: `repeatSubscribeAnswer`), then a `snapshot` of the last 50 trades if asked; `update`s; `heartbeat` once per `heartbeatMs` when nothing else
 * was sent; `ping` ⇒ `pong`. REST `GET /0/public/Trades?pair=&since=` over the same history (`since` and
 * `last` in ns, the result keyed by Kraken's own pair name, errors in `error[]` such as
 * `EAPI:Rate limit exceeded`), `pageSize` rows per page.
 */
export class KrakenServer extends ExchangeServer {
  /** Canonical pair → trades, in id order. */
  readonly history = new Map<string, KrakenTrade[]>();
  pageSize = 1000;
  /** REST lags the stream: the newest this many trades of each pair are not listed yet (as on an exchange whose REST history is behind its feed). */
  restLag = 0;
  heartbeatMs = 1_000;
  /** When set, the next subscription (of any symbol) is refused with this error, once (e.g. a rate limit). */
  refuseNextSubscribe: string | undefined;
  /**
   * While set, subscriptions are received but not confirmed (until `confirmSubscriptions`): the connector sends no
   * watermark for a pair before its confirmation, so trades published meanwhile reach it before any watermark (a
   * test's trades of two minutes ago would be late behind a watermark of now).
   */
  holdConfirmations = false;
  private heldConfirmations: (() => void)[] = [];
  /**
   * Subscriptions to these symbols are received and never answered: a server that accepts the socket, and keeps it
   * alive, but never acknowledges (the connector must not wait for ever).
   */
  readonly unanswered = new Set<string>();
  /**
   * The next subscription to these symbols is made (the pair streams) but its acknowledgement is lost, once each: the
   * connector, never told, asks again for a pair the connection already has.
   */
  readonly loseNextAck = new Set<string>();
  /**
   * How a subscription to a symbol the connection already has is answered. Kraken's docs do not say
   * (exchange-protocols.md §1: error texts unconfirmed); a third-party client's log of the real v2 server shows an
   * error — `{"error":"Already subscribed","method":"subscribe","success":false,"symbol":"BTC/USD",…}` — the default
   * here; `ack` answers as the first time.
   */
  repeatSubscribeAnswer: 'already-subscribed' | 'ack' = 'already-subscribed';
  /**
   * Each connection's confirmed symbols: updates go only to the connections subscribed to their symbol, heartbeats
   * only to those subscribed to something (§1: they start after subscribing to any channel).
   */
  private readonly subscribedSockets = new Map<WebSocket, Set<string>>();
  /** Each `Trades` page answered, in order: its pair, how many rows, the newest id among them. */
  readonly pagesServed: { pair: string; rows: number; lastId?: number }[] = [];
  /** Heartbeat frames sent so far. */
  heartbeats = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastSent = Date.now();
  private connectionId = 0;

  static readonly REST_KEYS: Record<string, { param: string; key: string }> = {
    'BTC/USDT': { param: 'XBTUSDT', key: 'XBTUSDT' },
    'BTC/USD': { param: 'XBTUSD', key: 'XXBTZUSD' },
    'ETH/USD': { param: 'ETHUSD', key: 'XETHZUSD' },
  };

  override async listen(): Promise<this> {
    await super.listen();
    this.timer = setInterval(
      () => {
        if (Date.now() - this.lastSent >= this.heartbeatMs) {
          this.heartbeats++;
          this.lastSent = Date.now();
          // Only to connections subscribed to something: a heartbeat to one that is not would keep alive a
          // connection the real exchange leaves silent.
          if (!this.silent)
            for (const ws of this.subscribedSockets.keys())
              if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ channel: 'heartbeat' }));
        }
      },
      Math.max(5, this.heartbeatMs / 4),
    );
    return this;
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    await super.close();
  }

  protected override get wsPath(): string {
    return '/v2';
  }

  /**
   * Records trades (REST sees them) and streams them as one `update` to the connections subscribed to the pair (unless
   * muted or silent).
   */
  publish(pair: string, trades: KrakenTrade[]): void {
    this.record(pair, trades);
    if (this.muted || this.silent) return;
    this.lastSent = Date.now();
    const frame = JSON.stringify({
      channel: 'trade',
      type: 'update',
      data: trades.map((t) => wsTrade(pair, t)),
    });
    for (const [ws, symbols] of this.subscribedSockets)
      if (symbols.has(pair) && ws.readyState === WebSocket.OPEN) ws.send(frame);
  }

  /** Records trades without streaming them: they happened, the client never saw them (a gap). */
  record(pair: string, trades: KrakenTrade[]): void {
    const h = this.history.get(pair) ?? [];
    h.push(...trades);
    this.history.set(pair, h);
  }

  protected onConnect(ws: WebSocket): void {
    ws.on('close', () => this.subscribedSockets.delete(ws));
    if (this.silent) return;
    ws.send(
      JSON.stringify({
        channel: 'status',
        type: 'update',
        data: [
          { system: 'online', api_version: 'v2', connection_id: ++this.connectionId, version: '2.0.10' },
        ],
      }),
    );
  }

  protected onClientMessage(ws: WebSocket, msg: unknown): void {
    const m = msg as {
      method?: string;
      params?: { channel?: string; symbol?: string[]; snapshot?: boolean };
      req_id?: number;
    };
    const now = new Date().toISOString();
    const reply = (body: Record<string, unknown>) =>
      ws.readyState === WebSocket.OPEN &&
      ws.send(JSON.stringify({ ...body, time_in: now, time_out: now, req_id: m.req_id }));
    if (m.method === 'ping') return void reply({ method: 'pong' });
    if (m.method !== 'subscribe' || m.params?.channel !== 'trade' || !Array.isArray(m.params.symbol))
      return void reply({
        method: m.method ?? 'unknown',
        success: false,
        error: 'EGeneral:Invalid arguments',
      });
    for (const symbol of m.params.symbol) {
      const refusal = this.refuseNextSubscribe;
      if (refusal !== undefined) {
        this.refuseNextSubscribe = undefined;
        reply({ method: 'subscribe', success: false, error: refusal, symbol });
        continue;
      }
      if (!(symbol in KrakenServer.REST_KEYS)) {
        reply({
          method: 'subscribe',
          success: false,
          error: `Currency pair not supported ${symbol}`,
          symbol,
        });
        continue;
      }
      if (this.unanswered.has(symbol)) continue;
      const snapshot = m.params.snapshot ?? false;
      const confirm = () => {
        if (ws.readyState !== WebSocket.OPEN) return;
        const symbols = this.subscribedSockets.get(ws) ?? new Set<string>();
        if (symbols.has(symbol) && this.repeatSubscribeAnswer === 'already-subscribed')
          return void reply({ method: 'subscribe', success: false, error: 'Already subscribed', symbol });
        this.subscribedSockets.set(ws, symbols.add(symbol));
        if (this.loseNextAck.delete(symbol)) return; // subscribed, the acknowledgement lost on the way
        reply({ method: 'subscribe', result: { channel: 'trade', symbol, snapshot }, success: true });
        if (snapshot && ws.readyState === WebSocket.OPEN) {
          const recent = (this.history.get(symbol) ?? []).slice(-50);
          ws.send(
            JSON.stringify({
              channel: 'trade',
              type: 'snapshot',
              data: recent.map((t) => wsTrade(symbol, t)),
            }),
          );
        }
      };
      if (this.holdConfirmations) this.heldConfirmations.push(confirm);
      else confirm();
    }
  }

  /** Open connections whose subscription to `pair` is confirmed (only they are streamed its trades). */
  subscribers(pair: string): number {
    let n = 0;
    for (const [ws, symbols] of this.subscribedSockets)
      if (symbols.has(pair) && ws.readyState === WebSocket.OPEN) n++;
    return n;
  }

  /** Subscriptions received but held (`holdConfirmations`); confirms them, and those to come. */
  get heldSubscriptions(): number {
    return this.heldConfirmations.length;
  }

  confirmSubscriptions(): void {
    this.holdConfirmations = false;
    for (const confirm of this.heldConfirmations.splice(0)) confirm();
  }

  protected rest(url: URL, _req: IncomingMessage, res: ServerResponse): void {
    if (url.pathname !== '/0/public/Trades')
      return void this.json(res, 404, { error: ['EGeneral:Unknown method'] });
    const param = url.searchParams.get('pair');
    const entry = Object.entries(KrakenServer.REST_KEYS).find(([, v]) => v.param === param);
    if (!entry) return void this.json(res, 200, { error: ['EQuery:Unknown asset pair'] });
    const since = BigInt(url.searchParams.get('since') ?? '0');
    const listed = (this.history.get(entry[0]) ?? []).slice(0, this.restLag > 0 ? -this.restLag : undefined);
    const rows = listed.filter((t) => ns(t.time) > since).slice(0, this.pageSize);
    const last = rows.length > 0 ? ns(rows[rows.length - 1]!.time) : since;
    this.pagesServed.push({ pair: entry[0], rows: rows.length, lastId: rows[rows.length - 1]?.id });
    // Times go out as JSON numbers with their recorded decimals, as Kraken sends them.
    const body = `{"error":[],"result":{"${entry[1].key}":[${rows
      .map((t) => `["${t.price}","${t.qty}",${t.time},"${t.side}","${t.ordType}","",${t.id}]`)
      .join(',')}],"last":"${last}"}}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  }

  protected rateLimited(res: ServerResponse): void {
    this.json(res, 200, { error: ['EAPI:Rate limit exceeded'] });
  }
}

/** Decimal seconds → ns, exactly. */
export function ns(time: string): bigint {
  const [s, f = ''] = time.split('.');
  return BigInt(s!) * 1_000_000_000n + BigInt(f.padEnd(9, '0').slice(0, 9));
}

/** A recorded trade as a WebSocket v2 `data` entry (RFC 3339 with µs, numbers as JSON numbers). */
export function wsTrade(pair: string, t: KrakenTrade) {
  const [s, f = ''] = t.time.split('.');
  const iso = new Date(Number(s) * 1000).toISOString().replace('.000Z', `.${f.padEnd(6, '0').slice(0, 6)}Z`);
  return {
    symbol: pair,
    side: t.side === 'b' ? 'buy' : 'sell',
    price: Number(t.price),
    qty: Number(t.qty),
    ord_type: t.ordType === 'l' ? 'limit' : 'market',
    trade_id: t.id,
    timestamp: iso,
  };
}
