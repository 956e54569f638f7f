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
  /**
   * An `{"type":"error"}` frame from the server (e.g. `replay_failed`: a resume it could not replay). With the
   * channel it names, and the delay after which that channel is asked again from its old resume point.
   */
  onServerError?: (
    code: string,
    message: string,
    refill?: { channel: ChannelName; retryInMs: number },
  ) => void;
  /** A channel's gap is filled: a replay from its old resume point went through. */
  onRefilled?: (channel: ChannelName) => void;
}

/** The error frames of a resume the server did not replay (live records follow): the records before are missing. */
const UNREPLAYED = new Set(['replay_failed', 'rate_limited']);
const CHANNELS: readonly ChannelName[] = ['candles', 'predictions', 'errors'];

/**
 * A channel whose resume the server did not replay: its resume point is kept (live records move the page's own
 * `since` past the gap), and the channel is asked again from it with back-off until a replay goes through.
 */
interface Refill {
  since: number;
  attempt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /**
   * The server answered a subscription from `since` (`subscribed`) and no error since: its first record, or its
   * `replayed` frame, then means the replay went through (the server sends its error frame before either).
   */
  answered: boolean;
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
  /** The `since` of each channel's last subscription. */
  private readonly sent: Partial<Record<ChannelName, number>> = {};
  private readonly refills = new Map<ChannelName, Refill>();

  constructor(o: LiveOptions) {
    this.o = o;
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const r of this.refills.values()) clearTimeout(r.timer);
    this.socket?.close();
  }

  /** Subscribes a channel from its resume point: the floor of a gap still to fill, else the newest record shown. */
  private subscribe(ws: WebSocket, channel: ChannelName): void {
    const s = this.refills.get(channel)?.since ?? this.o.since()[channel];
    if (s === undefined) delete this.sent[channel];
    else this.sent[channel] = s;
    ws.send(
      JSON.stringify({
        type: 'subscribe',
        channel,
        pairs: [this.o.pair],
        ...(s === undefined ? {} : { since: s }),
      }),
    );
  }

  /**
   * The server could not replay `channel` from where the page asked: keep that point and ask again after the
   * channel's back-off (a subscription is replayed only when it is new: unsubscribe first). The records already
   * shown come again and replace themselves.
   */
  private refill(channel: ChannelName): number | undefined {
    const since = this.refills.get(channel)?.since ?? this.sent[channel];
    if (since === undefined) return undefined; // a subscription without since replays from memory: nothing to fill
    const r = this.refills.get(channel) ?? { since, attempt: 0, timer: undefined, answered: false };
    this.refills.set(channel, r);
    r.answered = false;
    clearTimeout(r.timer);
    const delay = backoffDelay(r.attempt++, RECONNECT_BACKOFF);
    r.timer = setTimeout(() => {
      r.timer = undefined;
      const ws = this.socket;
      // Closed meanwhile: the reconnect subscribes the channel from the kept point.
      if (ws === undefined || ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: 'unsubscribe', channel, pairs: [this.o.pair] }));
      this.subscribe(ws, channel);
    }, delay);
    return delay;
  }

  /** A record, or the end of a replay, of `channel` after its resubscription was answered: the gap is filled. */
  private filled(channel: ChannelName): void {
    const r = this.refills.get(channel);
    if (r?.answered) {
      this.refills.delete(channel);
      this.o.onRefilled?.(channel);
    }
  }

  private connect(): void {
    if (this.stopped) return;
    this.o.onStatus('connecting');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
    const ws = new WebSocket(url);
    this.socket = ws;
    ws.onopen = () => {
      for (const channel of CHANNELS) this.subscribe(ws, channel);
      this.o.onStatus('live');
    };
    ws.onmessage = (ev) => {
      let msg: { type?: string; data?: unknown; error?: unknown; message?: unknown; channel?: unknown };
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      // The back-off starts again only once the server has taken a subscription: one that accepts the socket and
      // closes it at once (over its client limit: 1013; shutting down) would otherwise be asked again every second.
      if (msg.type === 'subscribed') {
        this.attempt = 0;
        const r = this.refills.get(msg.channel as ChannelName);
        if (r !== undefined) r.answered = true;
      }
      if (msg.type === 'error') {
        const code = String(msg.error ?? '');
        // An API from before the frame named its channel: told, but not filled (a reload does).
        const named = CHANNELS.find((c) => c === msg.channel);
        const retryInMs = named !== undefined && UNREPLAYED.has(code) ? this.refill(named) : undefined;
        this.o.onServerError?.(
          code,
          String(msg.message ?? ''),
          retryInMs === undefined ? undefined : { channel: named!, retryInMs },
        );
      }
      const channel = msg.type === undefined ? undefined : FRAME_CHANNEL[msg.type];
      if (channel !== undefined) {
        this.o.onRecord(channel, msg.data);
        this.filled(channel);
      }
      // The server's replay of a subscription is whole: with no record to replay (nothing was missing, or the
      // pipeline stopped) no record comes, and the gap's notice stayed until one did.
      if (msg.type === 'replayed') {
        const named = CHANNELS.find((c) => c === msg.channel);
        if (named !== undefined) this.filled(named);
      }
    };
    ws.onclose = () => {
      // The reconnect subscribes each channel with a gap from its kept point; until answered, nothing is filled.
      for (const r of this.refills.values()) {
        clearTimeout(r.timer);
        r.timer = undefined;
        r.answered = false;
      }
      if (this.stopped) return;
      const delay = backoffDelay(this.attempt++, RECONNECT_BACKOFF);
      this.o.onStatus('down', `reconnecting in ${(delay / 1000).toFixed(0)} s`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}
