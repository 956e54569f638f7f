/**
 * The dashboard's client of the cryptocast API: REST reads (paged ranges fetched in parallel) and the WebSocket with
 * resume — on every reconnect each channel is subscribed again with `since` = the newest record already shown, so a
 * restart of the API (or a lost connection) leaves no gap and no duplicate.
 */
import { backoffDelay } from '../../core/retry.ts';

/** Reconnecting the WebSocket, with jitter: every open dashboard reconnects at once after an API restart. */
const RECONNECT_BACKOFF = { initialMs: 1_000, maxMs: 30_000 };

export interface Page<T> {
  items: T[];
  next: number | null;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: { error?: string; message?: string };
  constructor(status: number, body: { error?: string; message?: string }) {
    super(body.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = (await res.json().catch(() => ({}))) as T & { error?: string; message?: string };
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

const DAY = 86_400_000;

/** Every record of a paged resource in [from, to), one request chain per day, the days in parallel. */
export async function range<T extends { windowEnd: number }>(
  path: string,
  pair: string,
  from: number,
  to: number,
): Promise<T[]> {
  const days: Promise<T[]>[] = [];
  for (let start = from; start < to; start += DAY) {
    const end = Math.min(to, start + DAY);
    days.push(
      (async () => {
        const out: T[] = [];
        let after: number | undefined;
        for (;;) {
          const q = `pair=${pair}&from=${start}&to=${end}&limit=1000${after === undefined ? '' : `&after=${after}`}`;
          const page = await getJson<Page<T>>(`${path}?${q}`);
          out.push(...page.items);
          if (page.next === null || page.items.length === 0) return out;
          after = page.next;
        }
      })(),
    );
  }
  return (await Promise.all(days)).flat();
}

export type ChannelName = 'candles' | 'predictions' | 'errors';

export interface LiveOptions {
  pair: string;
  /** The newest windowEnd already shown per channel (resume point). */
  since: () => Record<ChannelName, number | undefined>;
  onRecord: (channel: ChannelName, data: unknown) => void;
  onStatus: (status: 'connecting' | 'live' | 'down', detail?: string) => void;
  /** An `{"type":"error"}` frame from the server (e.g. `replay_failed`: a resume it could not replay). */
  onServerError?: (code: string, message: string) => void;
}

const FRAME_CHANNEL: Record<string, ChannelName> = {
  candle: 'candles',
  prediction: 'predictions',
  prediction_error: 'errors',
};

/** The WebSocket, reconnected with capped exponential back-off, each channel resumed from where the page is. */
export class Live {
  private socket: WebSocket | undefined;
  private attempt = 0;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly o: LiveOptions;

  constructor(o: LiveOptions) {
    this.o = o;
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close();
  }

  private connect(): void {
    if (this.stopped) return;
    this.o.onStatus('connecting');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
    const ws = new WebSocket(url);
    this.socket = ws;
    ws.onopen = () => {
      const since = this.o.since();
      for (const channel of ['candles', 'predictions', 'errors'] as const) {
        const s = since[channel];
        ws.send(
          JSON.stringify({
            type: 'subscribe',
            channel,
            pairs: [this.o.pair],
            ...(s === undefined ? {} : { since: s }),
          }),
        );
      }
      this.o.onStatus('live');
    };
    ws.onmessage = (ev) => {
      let msg: { type?: string; data?: unknown; error?: unknown; message?: unknown };
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      // The back-off starts again only once the server has taken a subscription: one that accepts the socket and
      // closes it at once (over its client limit: 1013; shutting down) would otherwise be asked again every second.
      if (msg.type === 'subscribed') this.attempt = 0;
      if (msg.type === 'error') this.o.onServerError?.(String(msg.error ?? ''), String(msg.message ?? ''));
      const channel = msg.type === undefined ? undefined : FRAME_CHANNEL[msg.type];
      if (channel !== undefined) this.o.onRecord(channel, msg.data);
    };
    ws.onclose = () => {
      if (this.stopped) return;
      const delay = backoffDelay(this.attempt++, RECONNECT_BACKOFF);
      this.o.onStatus('down', `reconnecting in ${(delay / 1000).toFixed(0)} s`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}
