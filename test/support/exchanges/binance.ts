import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebSocket } from 'ws';
import { ExchangeServer } from './base.ts';

/**
 * Binance spot stand-in (binance-spot-api-docs web-socket-streams.md, rest-api.md): the combined stream at
 * `/stream` (events wrapped as `{"stream":"btcusdt@trade","data":{…}}`, streams added with `SUBSCRIBE` ⇒
 * `{"result":null,"id":…}`, unknown methods ⇒ `{"error":{"code":2,"msg":…},"id":…}`), raw streams at
 * `/ws/<stream>` (bare events), a ping frame every `pingMs`, `serverShutdown()` to announce a restart. REST
 * `GET /api/v3/historicalTrades?symbol=&fromId=&limit=` over the same history (most recent trades without
 * `fromId`); HTTP 429 `{"code":-1003}` when rate limited.
 */
export class BinanceServer extends ExchangeServer {
  /** Symbol (`BTCUSDT`) → trade events as Binance sends them, in id order. */
  readonly history = new Map<string, Record<string, unknown>[]>();
  pingMs = 20_000;
  /** `Retry-After` (seconds) of a rate-limited REST answer: Binance sends it with every 429 and 418. */
  retryAfterSec = 1;
  /** REST lags the stream: the newest this many trades of each symbol are not listed yet. */
  restLag = 0;
  private readonly subscribed = new Map<
    WebSocket,
    { streams: Set<string>; combined: boolean; micro: boolean }
  >();
  private timer: NodeJS.Timeout | undefined;

  override async listen(): Promise<this> {
    await super.listen();
    this.timer = setInterval(() => {
      if (!this.silent) for (const ws of this.sockets) if (ws.readyState === WebSocket.OPEN) ws.ping();
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

  /** Records trade events (REST sees them) and streams them to subscribers (unless muted or silent). */
  publish(events: Record<string, unknown>[]): void {
    for (const e of events) {
      const sym = String(e.s);
      const h = this.history.get(sym) ?? [];
      h.push(e);
      this.history.set(sym, h);
      if (this.muted || this.silent) continue;
      const stream = `${sym.toLowerCase()}@trade`;
      for (const [ws, sub] of this.subscribed) {
        if (!sub.streams.has(stream) || ws.readyState !== WebSocket.OPEN) continue;
        // `timeUnit=MICROSECOND` on the connection URL: event and trade times in µs (§4).
        const ev = sub.micro ? { ...e, E: Number(e.E) * 1000, T: Number(e.T) * 1000 } : e;
        ws.send(JSON.stringify(sub.combined ? { stream, data: ev } : ev));
      }
    }
  }

  /** The notice Binance sends before a planned disconnect. */
  serverShutdown(): void {
    this.sendRaw({ e: 'serverShutdown', E: Date.now() });
  }

  protected onConnect(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const raw = /^\/ws\/(.+)$/.exec(url.pathname);
    this.subscribed.set(ws, {
      streams: new Set(raw ? [decodeURIComponent(raw[1]!)] : []),
      combined: !raw,
      micro: url.searchParams.get('timeUnit')?.toUpperCase() === 'MICROSECOND',
    });
    ws.on('close', () => this.subscribed.delete(ws));
  }

  protected onClientMessage(ws: WebSocket, msg: unknown): void {
    const m = msg as { method?: string; params?: unknown; id?: unknown };
    if (m.method === 'SUBSCRIBE' && Array.isArray(m.params) && m.params.every((p) => typeof p === 'string')) {
      for (const s of m.params) this.subscribed.get(ws)?.streams.add(s);
      ws.send(JSON.stringify({ result: null, id: m.id ?? null }));
    } else
      ws.send(
        JSON.stringify({
          error: { code: 2, msg: `Invalid request: unknown variant ${String(m.method)}` },
          id: m.id ?? null,
        }),
      );
  }

  protected rest(url: URL, _req: IncomingMessage, res: ServerResponse): void {
    if (url.pathname !== '/api/v3/historicalTrades')
      return void this.json(res, 404, { code: -1, msg: 'not found' });
    const all = this.history.get(url.searchParams.get('symbol') ?? '');
    const rows = all?.slice(0, this.restLag > 0 ? -this.restLag : undefined);
    if (rows === undefined) return void this.json(res, 400, { code: -1121, msg: 'Invalid symbol.' });
    const limit = Math.min(1000, Number(url.searchParams.get('limit') ?? 500));
    const fromId = url.searchParams.get('fromId');
    const page =
      fromId === null
        ? rows.slice(-limit)
        : rows.filter((e) => Number(e.t) >= Number(fromId)).slice(0, limit);
    this.json(
      res,
      200,
      page.map((e) => ({
        id: e.t,
        price: e.p,
        qty: e.q,
        quoteQty: (Number(e.p) * Number(e.q)).toFixed(8),
        time: e.T,
        isBuyerMaker: e.m,
        isBestMatch: true,
      })),
    );
  }

  protected rateLimited(res: ServerResponse): void {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(this.retryAfterSec) }).end(
      JSON.stringify({
        code: -1003,
        msg: 'Too many requests; current limit is 6000 request weight per 1 MINUTE.',
      }),
    );
  }
}
