import { createServer, type Server, type Socket } from 'node:net';

/**
 * A "server" on 127.0.0.1 that accepts every TCP connection and never says a word: a database or broker that hangs, a
 * host behind a firewall that drops. Tests point a store or client at `port` to see that it gives up, or stops, in time.
 */
export class SilentServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Connections accepted so far. */
  connections = 0;
  port = 0;

  private constructor() {
    this.server = createServer((s) => {
      this.connections++;
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async listen(): Promise<SilentServer> {
    const silent = new SilentServer();
    await new Promise<void>((r) => silent.server.listen(0, '127.0.0.1', r));
    silent.port = (silent.server.address() as { port: number }).port;
    return silent;
  }

  /** Closes it and the connections it holds. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
