import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { Logger } from '../../core/log.ts';
import { type Backoff, backoffDelay } from '../../core/retry.ts';

/**
 * A websocket that stays connected, shared by the live connectors:
 * - reconnects with exponential back-off and jitter, capped (`backoffDelay`); a connection that delivered
 *   data and stayed up for `stableAfterMs` resets the back-off, any other doubles it — an exchange that accepts,
 *   says hello (Kraken's status frame) and hangs up at once would otherwise be reconnected, and every pair refilled
 *   over REST, twice a second;
 * - liveness: no frame, heartbeat, ping or pong within `idleTimeoutMs` ⇒ the socket is dropped and re-opened
 *   (a half-open TCP connection otherwise looks healthy for minutes);
 * - protocol pings are answered by `ws` itself (Binance pings every 20 s and cuts clients that do not pong);
 *   application pings (Kraken `{"method":"ping"}`) are sent every `appPing.intervalMs`;
 * - `onOpen` runs on every (re)connect — that is where a connector (re)subscribes — and frames are handed
 *   to `onMessage` one at a time, in order, even when a handler awaits (REST refills);
 * - stops when `signal` aborts: a close handshake, and the socket cut if the peer does not answer it within
 *   `closeTimeoutMs` (a half-open peer never does).
 */
export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000 };

/** `maxQueuedBytes` by default: minutes of a busy stream (a queued frame holds ~700 bytes at 200 chars of text). */
export const DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024;

/**
 * What a frame waiting to be handled holds besides its text (its closure and promise in the queue, its receipt time):
 * ~500 bytes measured (bench/live-rest-outage.ts: ~700 bytes of heap per queued 200-character frame).
 */
const QUEUED_FRAME_OVERHEAD_BYTES = 512;

export interface ReconnectingSocketOptions {
  url: string;
  name: string;
  log: Logger;
  onOpen(send: (text: string) => void, connection: number): void | Promise<void>;
  onMessage(text: string, receivedTs: number): void | Promise<void>;
  onDisconnect?(reason: string): void;
  /**
   * A frame refused unread (over `maxFrameBytes`: the connection is closed with 1009), with why — in order with the
   * frames handled before it. Its content is not kept: `ws` stops reading it at the limit.
   */
  onFrameRefused?(reason: string): void | Promise<void>;
  /** Called before each wait, with the delay chosen and the consecutive failures so far. */
  onBackoff?(delayMs: number, failures: number): void;
  idleTimeoutMs?: number;
  backoff?: Backoff;
  /** Application-level ping (Kraken), sent every `intervalMs` while connected. */
  appPing?: { intervalMs: number; frame(): string };
  handshakeTimeoutMs?: number;
  /**
   * Most bytes of frames waiting to be handled (text plus `QUEUED_FRAME_OVERHEAD_BYTES` each) — they queue behind a
   * slow handler (a refill retrying a REST API that is down, minutes per pair). Past it the connection is cut: the
   * frames already queued are kept and handled, those not received are the connector's to refill on reconnecting, as
   * after any outage. Default `DEFAULT_MAX_QUEUED_BYTES`.
   */
  maxQueuedBytes?: number;
  /** The queue went past `maxQueuedBytes` and the connection is being cut (once per connection). */
  onQueueOverflow?(queuedBytes: number): void;
  /** Largest frame accepted; a bigger one closes the connection (a protocol violation). */
  maxFrameBytes?: number;
  /** The jitter source (tests make it deterministic). */
  random?: () => number;
  /** How long a connection must stay up (and deliver data) to reset the back-off. Default 30 s. */
  stableAfterMs?: number;
  /** How long a stop waits for the peer's answer to the close frame before cutting the socket. Default 1 s. */
  closeTimeoutMs?: number;
}

export class ReconnectingSocket {
  /** Connections opened so far (1 = the first). */
  connects = 0;
  /** Attempts made so far, successful or not. */
  attempts = 0;
  private readonly o: ReconnectingSocketOptions;
  private ws: WebSocket | undefined;
  /** Queues a job behind the current connection's frames; undefined while not connected. */
  private enqueueOnConnection: ((what: string, job: () => Promise<void>) => void) | undefined;
  /** When each frame received and not yet handled arrived (epoch ms), oldest — the one being handled — first. */
  private readonly unhandledReceivedTs: number[] = [];
  /** The bytes each of those holds (same order), and their sum. */
  private readonly unhandledBytes: number[] = [];
  private unhandledBytesTotal = 0;

  constructor(options: ReconnectingSocketOptions) {
    this.o = options;
  }

  /**
   * When the oldest frame received but not yet handled arrived (epoch ms; the frame being handled counts), or
   * undefined when none waits. Frames queue behind a slow handler (a refill, a slow sink): a connector's watermark
   * must not pass the trades they hold.
   */
  get oldestUnhandledTs(): number | undefined {
    return this.unhandledReceivedTs[0];
  }

  /** Bytes held by the frames received and not yet handled (text plus a fixed overhead each; `maxQueuedBytes`). */
  get queuedBytes(): number {
    return this.unhandledBytesTotal;
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(text: string): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  /**
   * Runs `job` in order with the current connection's frames (after those received so far, before the next), as a
   * frame handler would: for work a timer starts that must not interleave with the frames (a connector's sink gets
   * one sequence). False when not connected (nothing is queued).
   */
  inOrder(what: string, job: () => Promise<void>): boolean {
    if (this.enqueueOnConnection === undefined) return false;
    this.enqueueOnConnection(what, job);
    return true;
  }

  /** Cuts the current connection (liveness, a server's shutdown notice, tests); the loop reconnects. */
  drop(reason: string): void {
    if (this.ws === undefined) return;
    this.o.log.warn({ reason }, 'dropping connection');
    this.ws.terminate();
  }

  async run(signal: AbortSignal): Promise<void> {
    const backoff = this.o.backoff ?? DEFAULT_BACKOFF;
    let failures = 0;
    while (!signal.aborted) {
      const healthy = await this.once(signal);
      if (signal.aborted) break;
      failures = healthy ? 0 : failures + 1;
      const delay = backoffDelay(failures, backoff, this.o.random);
      this.o.onBackoff?.(delay, failures);
      this.o.log.info({ delayMs: Math.round(delay), failures }, 'reconnecting after back-off');
      await sleep(delay, undefined, { signal }).catch(() => {});
    }
  }

  /**
   * One connection's life. Resolves when it has ended and its frames are handled; true if it got data and stayed up
   * for `stableAfterMs`.
   */
  private once(signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.attempts++;
      let gotData = false;
      let openedAt: number | undefined;
      let settled = false;
      let connection = 0;
      let overflowed = false;
      const maxQueuedBytes = this.o.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
      const maxFrameBytes = this.o.maxFrameBytes ?? 4 * 1024 * 1024;
      const ws = new WebSocket(this.o.url, {
        handshakeTimeout: this.o.handshakeTimeoutMs ?? 10_000,
        maxPayload: maxFrameBytes,
      });
      this.ws = ws;
      const idleMs = this.o.idleTimeoutMs ?? 30_000;
      let idle: NodeJS.Timeout | undefined;
      const alive = () => {
        clearTimeout(idle);
        idle = setTimeout(() => this.drop(`no frame for ${idleMs} ms`), idleMs);
      };
      let ping: NodeJS.Timeout | undefined;
      const onAbort = () => {
        if (ws.readyState !== WebSocket.OPEN) return ws.terminate();
        ws.close(1000, 'client stopping');
        setTimeout(() => ws.terminate(), this.o.closeTimeoutMs ?? 1_000).unref();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // Frames are handled one at a time, in order, even when a handler awaits.
      let chain: Promise<void> = Promise.resolve();
      const enqueue = (what: string, job: () => void | Promise<void>) => {
        chain = chain.then(job).catch((err) => this.o.log.error({ err, connection }, `${what} failed`));
      };
      ws.on('open', () => {
        connection = ++this.connects;
        openedAt = Date.now();
        alive();
        if (this.o.appPing) {
          const { intervalMs, frame } = this.o.appPing;
          ping = setInterval(() => this.send(frame()), intervalMs);
        }
        this.o.log.info({ url: this.o.url, connection, attempt: this.attempts }, 'connected');
        this.enqueueOnConnection = enqueue;
        enqueue('on-open (subscribe)', () => this.o.onOpen((t) => ws.send(t), connection));
      });
      ws.on('message', (data, isBinary) => {
        alive();
        gotData = true;
        const receivedTs = Date.now();
        const text = isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString();
        const bytes = text.length + QUEUED_FRAME_OVERHEAD_BYTES;
        this.unhandledReceivedTs.push(receivedTs);
        this.unhandledBytes.push(bytes);
        this.unhandledBytesTotal += bytes;
        enqueue('frame handler', async () => {
          try {
            await this.o.onMessage(text, receivedTs);
          } finally {
            // Handled one at a time, in order: this frame is the oldest.
            this.unhandledReceivedTs.shift();
            this.unhandledBytesTotal -= this.unhandledBytes.shift() ?? 0;
          }
        });
        if (!overflowed && this.unhandledBytesTotal > maxQueuedBytes) {
          // Not dropped from the queue (they were received: handled in order) — no more received instead.
          overflowed = true;
          this.o.log.error(
            { queuedBytes: this.unhandledBytesTotal, maxQueuedBytes, frames: this.unhandledBytes.length },
            'frames waiting to be handled past the bound: connection cut (what it would have brought is refilled on reconnecting)',
          );
          this.o.onQueueOverflow?.(this.unhandledBytesTotal);
          ws.terminate();
        }
      });
      // `ws` answers a server ping with a pong by itself; either is a sign of life.
      ws.on('ping', alive);
      ws.on('pong', alive);
      ws.on('error', (err) => {
        this.o.log.warn({ err: err.message, url: this.o.url }, 'websocket error');
        if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
          enqueue('refused-frame handler', () =>
            this.o.onFrameRefused?.(`a frame over ${maxFrameBytes} bytes, refused unread (${err.message})`),
          );
      });
      ws.on('close', (code, reason) => {
        if (settled) return;
        settled = true;
        if (this.enqueueOnConnection === enqueue) this.enqueueOnConnection = undefined;
        clearTimeout(idle);
        clearInterval(ping);
        signal.removeEventListener('abort', onAbort);
        if (!signal.aborted) this.o.onDisconnect?.(`closed ${code} ${reason.toString()}`.trim());
        const stable =
          gotData && openedAt !== undefined && Date.now() - openedAt >= (this.o.stableAfterMs ?? 30_000);
        void chain.finally(() => resolve(stable));
      });
    });
  }
}
