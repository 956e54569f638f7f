import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/**
 * A local stand-in for an exchange: one HTTP server on 127.0.0.1 (random port) carrying both the websocket
 * endpoint and the REST endpoints, scriptable from tests: drop connections, go silent, send raw frames,
 * answer REST calls with rate-limit errors. Each exchange subclass speaks its documented protocol.
 */
export abstract class ExchangeServer {
  readonly http: Server;
  readonly wss: WebSocketServer;
  readonly sockets = new Set<WebSocket>();
  readonly received: unknown[] = [];
  readonly restCalls: string[] = [];
  /** While true, updates are recorded in the history (REST sees them) but not sent (a lost stretch). */
  muted = false;
  /** The next N REST calls answer with the exchange's rate-limit error. */
  rateLimitNext = 0;
  port = 0;

  constructor() {
    this.http = createServer((req, res) => {
      this.restCalls.push(req.url ?? '');
      if (this.rateLimitNext > 0) {
        this.rateLimitNext--;
        this.rateLimited(res);
        return;
      }
      const url = new URL(req.url ?? '/', 'http://x');
      try {
        this.rest(url, req, res);
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    });
    this.wss = new WebSocketServer({ server: this.http });
    this.wss.on('connection', (ws) => {
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      ws.on('message', (data) => {
        let msg: unknown;
        try {
          msg = JSON.parse(data.toString());
        } catch {
          msg = data.toString();
        }
        this.received.push(msg);
        this.onClientMessage(ws, msg);
      });
      this.onConnect(ws);
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    this.port = (this.http.address() as AddressInfo).port;
    return this;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}${this.wsPath}`;
  }

  get restUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected get wsPath(): string {
    return '/';
  }

  /** Sends a frame to every connected client (unless muted). */
  broadcast(frame: unknown): void {
    if (this.muted) return;
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    for (const ws of this.sockets) if (ws.readyState === WebSocket.OPEN) ws.send(text);
  }

  /** Cuts every connection abruptly (no close frame), as a network failure would. */
  dropAll(): void {
    for (const ws of this.sockets) ws.terminate();
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  protected json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  protected abstract onConnect(ws: WebSocket): void;
  protected abstract onClientMessage(ws: WebSocket, msg: unknown): void;
  protected abstract rest(url: URL, req: IncomingMessage, res: ServerResponse): void;
  protected abstract rateLimited(res: ServerResponse): void;
}

/** Waits until `cond()` holds (polling), or fails after `ms`. */
export async function until(cond: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
