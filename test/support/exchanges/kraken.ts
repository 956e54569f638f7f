import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
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
 * Kraken stand-in. WebSocket v2 (docs.kraken.com spot-websocket-v2): `status` on connect; `subscribe` to
 * `trade` ⇒ one ack per symbol, then a `snapshot` of the last 50 trades if asked; `update`s; `heartbeat`
 * once a second when idle; `ping` ⇒ `pong`. REST `GET /0/public/Trades?pair=&since=` (since and `last` in
 * ns; the result key is Kraken's pair name; errors in `error[]`, e.g. `EAPI:Rate limit exceeded`).
 */
export class KrakenServer extends ExchangeServer {
  /** Canonical pair → trades, by id. */
  readonly history = new Map<string, KrakenTrade[]>();
  pageSize = 1000;
  heartbeatMs = 1_000;
  private timer: NodeJS.Timeout | undefined;
  private lastSent = Date.now();

  static readonly REST_KEYS: Record<string, { param: string; key: string }> = {
    'BTC/USDT': { param: 'XBTUSDT', key: 'XBTUSDT' },
    'BTC/USD': { param: 'XBTUSD', key: 'XXBTZUSD' },
    'ETH/USD': { param: 'ETHUSD', key: 'XETHZUSD' },
  };

  override async listen(): Promise<this> {
    await super.listen();
    this.timer = setInterval(
      () => {
        if (Date.now() - this.lastSent >= this.heartbeatMs) this.send({ channel: 'heartbeat' });
      },
      Math.max(10, this.heartbeatMs / 4),
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

  /** Records trades (REST sees them) and sends them as one `update` (unless muted). */
  publish(pair: string, trades: KrakenTrade[]): void {
    const h = this.history.get(pair) ?? [];
    h.push(...trades);
    this.history.set(pair, h);
    this.send({ channel: 'trade', type: 'update', data: trades.map((t) => wsTrade(pair, t)) });
  }

  private send(frame: unknown): void {
    this.lastSent = Date.now();
    this.broadcast(frame);
  }

  protected onConnect(ws: WebSocket): void {
    ws.send(
      JSON.stringify({
        channel: 'status',
        type: 'update',
        data: [{ system: 'online', api_version: 'v2', connection_id: 1, version: '2.0.10' }],
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
    if (m.method === 'ping') {
      ws.send(JSON.stringify({ method: 'pong', req_id: m.req_id, time_in: now, time_out: now }));
      return;
    }
    if (m.method === 'subscribe' && m.params?.channel === 'trade') {
      for (const symbol of m.params.symbol ?? []) {
        ws.send(
          JSON.stringify({
            method: 'subscribe',
            result: { channel: 'trade', symbol, snapshot: m.params.snapshot ?? false },
            success: true,
            time_in: now,
            time_out: now,
            req_id: m.req_id,
          }),
        );
        if (m.params.snapshot) {
          const recent = (this.history.get(symbol) ?? []).slice(-50);
          ws.send(
            JSON.stringify({
              channel: 'trade',
              type: 'snapshot',
              data: recent.map((t) => wsTrade(symbol, t)),
            }),
          );
        }
      }
      return;
    }
    ws.send(
      JSON.stringify({
        method: m.method ?? 'unknown',
        success: false,
        error: 'EGeneral:Invalid arguments',
        time_in: now,
        time_out: now,
        req_id: m.req_id,
      }),
    );
  }

  protected rest(url: URL, _req: IncomingMessage, res: ServerResponse): void {
    if (url.pathname !== '/0/public/Trades')
      return void this.json(res, 404, { error: ['EGeneral:Unknown method'] });
    const param = url.searchParams.get('pair');
    const entry = Object.entries(KrakenServer.REST_KEYS).find(([, v]) => v.param === param);
    if (!entry) return void this.json(res, 200, { error: ['EQuery:Unknown asset pair'] });
    const since = BigInt(url.searchParams.get('since') ?? '0');
    const rows = (this.history.get(entry[0]) ?? []).filter((t) => ns(t.time) > since).slice(0, this.pageSize);
    const last = rows.length > 0 ? ns(rows[rows.length - 1]!.time) : since;
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

function ns(time: string): bigint {
  const [s, f = ''] = time.split('.');
  return BigInt(s!) * 1_000_000_000n + BigInt(f.padEnd(9, '0').slice(0, 9));
}

function wsTrade(pair: string, t: KrakenTrade) {
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
