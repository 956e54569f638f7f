import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/**
 * A local stand-in for an exchange: one HTTP server on 127.0.0.1 (random port) carrying both the websocket
 * endpoint and the REST endpoints, speaking the exchange's documented protocol (each subclass), and
 * scriptable from tests and demos:
 * - `muted`: trades are recorded (REST sees them) but not streamed — frames lost on a live connection;
 * - `silent`: nothing at all is sent (no trades, heartbeats or pings) while connections stay open;
 * - `dropAll()`: cut every connection abruptly; `down`: refuse new websocket connections (HTTP 503);
 * - `sendRaw()`: any frame (malformed ones included) to every client;
 * - `rateLimitNext` / `failNext` / `resetNext`: the next N REST calls get the exchange's rate-limit error /
 *   an HTTP 502 / a reset connection.
 * Everything clients send is kept in `received`, every REST call in `restCalls`.
 */
export abstract class ExchangeServer {
  readonly http: Server;
  readonly wss: WebSocketServer;
  readonly sockets = new Set<WebSocket>();
  /** Client messages, parsed as JSON when they are. */
  readonly received: unknown[] = [];
  readonly restCalls: string[] = [];
  /** Called as each REST call arrives, before it is answered (tests mark it in their own ordered logs). */
  onRestCall: (url: string) => void = () => {};
  /** Websocket connections accepted so far. */
  connections = 0;
  /** Protocol pong frames received from clients. */
  pongs = 0;
  muted = false;
  silent = false;
  down = false;
  rateLimitNext = 0;
  failNext = 0;
  resetNext = 0;
  /** The next N JSON answers carry this many bytes of trailing whitespace (still valid JSON: a huge body). */
  padNextBodies = 0;
  padBytes = 0;
  /** Answer REST calls only after this long (a slow exchange). */
  restDelayMs = 0;
  port = 0;

  constructor() {
    this.http = createServer((req, res) => {
      this.restCalls.push(req.url ?? '');
      this.onRestCall(req.url ?? '');
      if (this.restDelayMs > 0) setTimeout(() => this.answer(req, res), this.restDelayMs);
      else this.answer(req, res);
    });
    this.wss = new WebSocketServer({
      server: this.http,
      verifyClient: (_info, done) => (this.down ? done(false, 503, 'down for a test') : done(true)),
    });
    this.wss.on('connection', (ws, req) => {
      this.connections++;
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      ws.on('pong', () => this.pongs++);
      ws.on('message', (data) => {
        let msg: unknown;
        try {
          msg = JSON.parse(data.toString());
        } catch {
          msg = data.toString();
        }
        this.received.push(msg);
        if (!this.silent) this.onClientMessage(ws, msg);
      });
      this.onConnect(ws, req);
    });
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    if (this.rateLimitNext > 0) {
      this.rateLimitNext--;
      this.rateLimited(res);
      return;
    }
    if (this.resetNext > 0) {
      this.resetNext--;
      req.socket.destroy(); // a network failure: the client sees the connection reset
      return;
    }
    if (this.failNext > 0) {
      this.failNext--;
      res.writeHead(502).end('bad gateway');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      this.rest(url, req, res);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
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

  /** Client messages that are objects with this `method`/`type` field value. */
  messages(field: string, value: string): Record<string, unknown>[] {
    return this.received.filter(
      (m): m is Record<string, unknown> =>
        typeof m === 'object' && m !== null && (m as Record<string, unknown>)[field] === value,
    );
  }

  /** Sends a frame (text as is, anything else as JSON) to every open client, unless silent. */
  sendRaw(frame: unknown): void {
    if (this.silent) return;
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
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  protected json(res: ServerResponse, status: number, body: unknown): void {
    let pad = 0;
    if (this.padNextBodies > 0) {
      this.padNextBodies--;
      pad = this.padBytes;
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + ' '.repeat(pad));
  }

  protected abstract onConnect(ws: WebSocket, req: IncomingMessage): void;
  protected abstract onClientMessage(ws: WebSocket, msg: unknown): void;
  protected abstract rest(url: URL, req: IncomingMessage, res: ServerResponse): void;
  protected abstract rateLimited(res: ServerResponse): void;
}

/**
 * Waits until `cond()` holds (polling), or fails after `ms` saying what it waited for. `ms` is where the test gives
 * up, never what it asserts: it is raised to at least 30 s, since a loaded machine's timers and sockets run seconds
 * late (a 2 s bound failed correct code there). A test that asserts a duration measures it itself.
 */
export async function until(cond: () => boolean, ms = 30_000, what = 'condition'): Promise<void> {
  const limit = Math.max(ms, 30_000);
  const end = Date.now() + limit;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${limit} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
