import { createServer, type IncomingMessage, request, type Server } from 'node:http';

/**
 * An HTTP proxy in front of a real server (MLflow) that can make it go away for a while, as a restart does: once a
 * request matches `outageOn`'s test, that request and every one for `forMs` after it get their connection dropped
 * without an answer (a server stopping, or one not listening yet behind a Service); after that, requests pass again.
 * `dropped` lists the requests dropped (method and path).
 */
export class OutageProxy {
  private readonly server: Server;
  private trigger: ((req: IncomingMessage) => boolean) | undefined;
  private outageMs = 0;
  private outageUntil = 0;
  readonly dropped: string[] = [];
  port = 0;

  private constructor(upstreamPort: number, upstreamHost: string) {
    this.server = createServer((req, res) => {
      if (this.trigger?.(req)) {
        this.trigger = undefined;
        this.outageUntil = Date.now() + this.outageMs;
      }
      if (Date.now() < this.outageUntil) {
        this.dropped.push(`${req.method} ${req.url}`);
        req.socket.destroy();
        return;
      }
      const up = request(
        {
          host: upstreamHost,
          port: upstreamPort,
          method: req.method,
          path: req.url,
          // The server's own address: MLflow refuses a Host it does not serve (its DNS-rebinding guard).
          headers: { ...req.headers, host: `${upstreamHost}:${upstreamPort}` },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      up.on('error', () => req.socket.destroy());
      req.pipe(up);
    });
  }

  static async start(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<OutageProxy> {
    const p = new OutageProxy(upstreamPort, upstreamHost);
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    p.port = (p.server.address() as { port: number }).port;
    return p;
  }

  /** The next request for which `test` is true starts an outage of `forMs` (it is the first one dropped). */
  outageOn(test: (req: IncomingMessage) => boolean, forMs: number): void {
    this.trigger = test;
    this.outageMs = forMs;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
