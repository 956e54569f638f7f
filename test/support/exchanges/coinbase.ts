import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { ExchangeServer } from './base.ts';

export interface CoinbaseTrade {
  trade_id: string;
  product_id: string;
  price: string;
  size: string;
  side: 'BUY' | 'SELL';
  time: string;
}

/**
 * Coinbase Advanced Trade stand-in (docs.cdp.coinbase.com, channels `market_trades`, `heartbeats`,
 * `subscriptions`): every message carries a `sequence_num`; `market_trades` sends a `snapshot` event after
 * subscribing, then `update`s; `heartbeats` ticks with `heartbeat_counter`. REST
 * `GET /api/v3/brokerage/market/products/{id}/ticker?limit=` returns the most recent trades.
 */
export class CoinbaseServer extends ExchangeServer {
  readonly history: CoinbaseTrade[] = [];
  heartbeatMs = 1_000;
  private seq = 0;
  private counter = 0;
  private timer: NodeJS.Timeout | undefined;

  override async listen(): Promise<this> {
    await super.listen();
    this.timer = setInterval(() => {
      this.envelope('heartbeats', [
        { current_time: new Date().toISOString(), heartbeat_counter: ++this.counter },
      ]);
    }, this.heartbeatMs);
    return this;
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    await super.close();
  }

  publish(trades: CoinbaseTrade[]): void {
    this.history.push(...trades);
    this.envelope('market_trades', [{ type: 'update', trades }]);
  }

  private envelope(channel: string, events: unknown[], only?: WebSocket): void {
    const msg = {
      channel,
      client_id: '',
      timestamp: new Date().toISOString(),
      sequence_num: this.seq++,
      events,
    };
    if (only) only.send(JSON.stringify(msg));
    else this.broadcast(msg); // when muted the sequence number still advances: the client sees the jump
  }

  protected onConnect(_ws: WebSocket): void {}

  protected onClientMessage(ws: WebSocket, msg: unknown): void {
    const m = msg as { type?: string; product_ids?: string[]; channel?: string };
    if (m.type !== 'subscribe') {
      ws.send(JSON.stringify({ type: 'error', message: 'unknown message type' }));
      return;
    }
    this.envelope('subscriptions', [{ subscriptions: { [m.channel ?? '']: m.product_ids ?? [] } }], ws);
    if (m.channel === 'market_trades') {
      const recent = this.history.filter((t) => m.product_ids?.includes(t.product_id)).slice(-50);
      this.envelope('market_trades', [{ type: 'snapshot', trades: recent }], ws);
    }
  }

  protected rest(url: URL, _req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/api\/v3\/brokerage\/market\/products\/([A-Z0-9-]+)\/ticker$/.exec(url.pathname);
    if (!m) return void this.json(res, 404, { error: 'NOT_FOUND' });
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const trades = this.history
      .filter((t) => t.product_id === m[1])
      .slice(-limit)
      .reverse();
    this.json(res, 200, { trades, best_bid: '', best_ask: '' });
  }

  protected rateLimited(res: ServerResponse): void {
    this.json(res, 429, { error: 'RATE_LIMIT_EXCEEDED' });
  }
}
