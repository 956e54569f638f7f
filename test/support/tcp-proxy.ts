import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real server that can go silent: `freeze()` stops passing bytes either way without closing
 * anything (a network partition, a host gone: no reset ever arrives); `thaw()` delivers what was held, in order, as
 * TCP does once a partition heals. Integration tests point a client at `port` to see what it does meanwhile.
 */
export class FreezableProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly held: (() => void)[] = [];
  private frozen = false;
  port = 0;

  private constructor(upstreamPort: number, upstreamHost: string) {
    this.server = createServer((client) => {
      const upstream = connect(upstreamPort, upstreamHost);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(from);
        from.on('error', () => to.destroy());
        from.on('close', () => {
          this.sockets.delete(from);
          to.destroy();
        });
        from.on('data', (chunk) => {
          if (this.frozen) this.held.push(() => to.write(chunk));
          else to.write(chunk);
        });
      }
    });
  }

  static async start(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<FreezableProxy> {
    const p = new FreezableProxy(upstreamPort, upstreamHost);
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    p.port = (p.server.address() as { port: number }).port;
    return p;
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const deliver of this.held.splice(0)) deliver();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/**
 * A server that accepts connections and never answers (a broker gone silent without closing anything): what a client
 * pointed at `port` does meanwhile is the question. `connections` counts the sockets it holds.
 */
export class SilentServer {
  private readonly server: Server;
  private readonly held = new Set<Socket>();
  port = 0;

  private constructor() {
    this.server = createServer((s) => {
      this.held.add(s);
      s.on('error', () => {});
    });
  }

  static async start(): Promise<SilentServer> {
    const silent = new SilentServer();
    await new Promise<void>((r) => silent.server.listen(0, '127.0.0.1', r));
    silent.port = (silent.server.address() as { port: number }).port;
    return silent;
  }

  get connections(): number {
    return this.held.size;
  }

  async close(): Promise<void> {
    for (const s of this.held) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
