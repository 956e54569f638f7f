import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { ExchangeServer } from './base.ts';

/**
 * Binance spot stand-in (binance-spot-api-docs web-socket-streams.md): combined stream at `/stream`,
 * `SUBSCRIBE` ⇒ `{"result":null,"id":…}`, events wrapped as `{"stream":"btcusdt@trade","data":{…}}`, a ping
 * frame every `pingMs`. REST `GET /api/v3/historicalTrades?symbol=&fromId=&limit=`; HTTP 429 when rate limited.
 */
export class BinanceServer extends ExchangeServer {
  /** Symbol (BTCUSDT) → trade events as Binance sends them. */
  readonly history = new Map<string, Record<string, unknown>[]>();
  pingMs = 20_000;
  private readonly subscribed = new Map<WebSocket, Set<string>>();
  private timer: NodeJS.Timeout | undefined;

  override async listen(): Promise<this> {
    await super.listen();
    this.timer = setInterval(() => {
      for (const ws of this.sockets) ws.ping();
    }, this.pingMs);
    return this;
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    await super.close();
  }

  protected override get wsPath(): string {
    return '/stream';
  }

  publish(events: Record<string, unknown>[]): void {
    for (const e of events) {
      const sym = String(e.s);
      const h = this.history.get(sym) ?? [];
      h.push(e);
      this.history.set(sym, h);
      if (this.muted) continue;
      const stream = `${sym.toLowerCase()}@trade`;
      for (const [ws, subs] of this.subscribed)
        if (subs.has(stream) && ws.readyState === 1) ws.send(JSON.stringify({ stream, data: e }));
    }
  }

  protected onConnect(ws: WebSocket): void {
    this.subscribed.set(ws, new Set());
    ws.on('close', () => this.subscribed.delete(ws));
  }

  protected onClientMessage(ws: WebSocket, msg: unknown): void {
    const m = msg as { method?: string; params?: string[]; id?: number };
    if (m.method === 'SUBSCRIBE' && Array.isArray(m.params)) {
      for (const s of m.params) this.subscribed.get(ws)?.add(s);
      ws.send(JSON.stringify({ result: null, id: m.id }));
    } else
      ws.send(
        JSON.stringify({ error: { code: 2, msg: 'Invalid request: unknown method' }, id: m.id ?? null }),
      );
  }

  protected rest(url: URL, _req: IncomingMessage, res: ServerResponse): void {
    if (url.pathname !== '/api/v3/historicalTrades')
      return void this.json(res, 404, { code: -1, msg: 'not found' });
    const sym = url.searchParams.get('symbol') ?? '';
    const from = Number(url.searchParams.get('fromId') ?? 0);
    const limit = Math.min(1000, Number(url.searchParams.get('limit') ?? 500));
    const rows = (this.history.get(sym) ?? []).filter((e) => Number(e.t) >= from).slice(0, limit);
    this.json(
      res,
      200,
      rows.map((e) => ({
        id: e.t,
        price: e.p,
        qty: e.q,
        quoteQty: String(Number(e.p) * Number(e.q)),
        time: e.T,
        isBuyerMaker: e.m,
        isBestMatch: true,
      })),
    );
  }

  protected rateLimited(res: ServerResponse): void {
    res
      .writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' })
      .end(JSON.stringify({ code: -1003, msg: 'Too many requests' }));
  }
}
