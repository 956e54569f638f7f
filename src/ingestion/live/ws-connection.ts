import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { Logger } from '../../core/log.ts';

/**
 * A websocket that stays connected: exponential back-off with full jitter between attempts (capped), a
 * liveness deadline (no frame, heartbeat or ping within `idleTimeoutMs` ⇒ the socket is dropped and
 * re-opened), optional application pings, and an AbortSignal to stop. `onOpen` runs on every (re)connect,
 * which is where a connector (re)subscribes.
 */
export interface ReconnectingSocketOptions {
  url: string;
  name: string;
  log: Logger;
  onOpen(send: (text: string) => void, attempt: number): void | Promise<void>;
  onMessage(text: string, receivedTs: number): void | Promise<void>;
  onDisconnect?(reason: string): void;
  idleTimeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Application-level ping (Kraken: `{"method":"ping"}`), sent every `intervalMs`. */
  appPing?: { intervalMs: number; frame(): string };
  /** Largest frame accepted (bigger ones close the connection: a protocol violation). */
  maxFrameBytes?: number;
}

export class ReconnectingSocket {
  connects = 0;
  private readonly o: ReconnectingSocketOptions;
  private ws: WebSocket | undefined;

  constructor(options: ReconnectingSocketOptions) {
    this.o = options;
  }

  send(text: string): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  /** Closes the current socket (tests and liveness use it); the loop reconnects. */
  drop(reason: string): void {
    this.o.log.warn({ reason }, 'dropping connection');
    this.ws?.terminate();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { initialMs, maxMs } = this.o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    let failures = 0;
    while (!signal.aborted) {
      const healthy = await this.once(signal);
      if (signal.aborted) break;
      failures = healthy ? 0 : failures + 1;
      const delay = Math.random() * Math.min(maxMs, initialMs * 2 ** failures);
      this.o.log.info({ delayMs: Math.round(delay), failures }, 'reconnecting');
      await sleep(delay, undefined, { signal }).catch(() => {});
    }
  }

  /** One connection's life. Resolves when it ends; true if it had worked (received data). */
  private once(signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let gotData = false;
      let settled = false;
      const ws = new WebSocket(this.o.url, {
        handshakeTimeout: 10_000,
        maxPayload: this.o.maxFrameBytes ?? 4 * 1024 * 1024,
      });
      this.ws = ws;
      const idleMs = this.o.idleTimeoutMs ?? 30_000;
      let idle: NodeJS.Timeout | undefined;
      const touch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => this.drop(`no frame for ${idleMs} ms`), idleMs);
      };
      const ping = this.o.appPing
        ? setInterval(() => this.send(this.o.appPing!.frame()), this.o.appPing.intervalMs)
        : undefined;
      const onAbort = () => ws.close(1000, 'client stopping');
      signal.addEventListener('abort', onAbort, { once: true });
      // Frames are handled one at a time, in order, even when a handler awaits (REST recovery).
      let chain: Promise<void> = Promise.resolve();
      const finish = (reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        clearInterval(ping);
        signal.removeEventListener('abort', onAbort);
        if (!signal.aborted) this.o.onDisconnect?.(reason);
        void chain.finally(() => resolve(gotData));
      };
      ws.on('open', () => {
        this.connects++;
        touch();
        this.o.log.info({ url: this.o.url, attempt: this.connects }, 'connected');
        chain = chain
          .then(() => this.o.onOpen((t) => ws.send(t), this.connects))
          .catch((err) => this.o.log.error({ err, source: this.o.name }, 'subscribe failed'));
      });
      ws.on('message', (data, isBinary) => {
        touch();
        gotData = true;
        const receivedTs = Date.now();
        const text = isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString();
        chain = chain
          .then(() => this.o.onMessage(text, receivedTs))
          .catch((err) => this.o.log.error({ err, source: this.o.name }, 'frame handler failed'));
      });
      // The ws library answers server pings with pongs itself; a ping is still a sign of life.
      ws.on('ping', touch);
      ws.on('pong', touch);
      ws.on('error', (err) => this.o.log.warn({ err: err.message }, 'websocket error'));
      ws.on('close', (code, reason) => finish(`closed ${code} ${reason.toString()}`.trim()));
    });
  }
}
