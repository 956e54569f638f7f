import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';

/**
 * What every exchange frame parser returns. Parsers are pure (text in, data out) and never throw: anything
 * they cannot use becomes a reject with a reason, which the connector dead-letters before carrying on.
 *
 * `controls` is a list, not a single value, because one frame can carry several facts the connector acts on
 * (a Coinbase message has a `sequence_num` *and* a heartbeat counter).
 */
export interface Reject {
  /** `parse`: not JSON / too big; `invalid`: a known message with bad fields; `unknown`: not a known message. */
  kind: 'parse' | 'invalid' | 'unknown' | 'exchange-error';
  reason: string;
}

export type Control =
  /** Liveness without data (Kraken `heartbeat`, Coinbase `heartbeats` with its counter). */
  | { type: 'heartbeat'; counter?: number }
  /** Exchange status (Kraken `online`/`maintenance`/…; Binance `serverShutdown` ⇒ `shutdown`). */
  | { type: 'status'; status: string }
  /** A subscription was confirmed (symbols may be empty when the exchange does not name them). */
  | { type: 'subscribed'; symbols: string[] }
  | { type: 'pong' }
  /** The exchange reported an error (failed subscribe, bad request); `symbol` when it names one. */
  | { type: 'error'; message: string; symbol?: string }
  /** Coinbase numbers every message of a connection: jumps are lost messages. */
  | { type: 'sequence'; sequence: number; channel: string }
  /** A well-formed message that needs no action (an empty snapshot, an unsubscribe ack, …). */
  | { type: 'ignored'; what: string };

export interface Parsed {
  trades: Trade[];
  rejects: Reject[];
  controls: Control[];
  /**
   * The frame's trades are the exchange's snapshot of recent trades sent on subscribing (Kraken's `snapshot`), not
   * trades as they happen: past trades, which a restarted process may have taken before it stopped.
   */
  snapshot?: boolean;
}

/** Frames larger than this are refused unparsed (a real trade frame is a few KiB). */
export const MAX_FRAME_CHARS = 1024 * 1024;

export function emptyParsed(): Parsed {
  return { trades: [], rejects: [], controls: [] };
}

/** JSON.parse that records a reject instead of throwing (including for absurd nesting or size). */
export function parseJson(text: string, out: Parsed): unknown {
  if (typeof text !== 'string') {
    out.rejects.push({ kind: 'parse', reason: 'frame is not text' });
    return undefined;
  }
  if (text.length > MAX_FRAME_CHARS) {
    out.rejects.push({
      kind: 'parse',
      reason: `frame of ${text.length} characters exceeds ${MAX_FRAME_CHARS}`,
    });
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    out.rejects.push({ kind: 'parse', reason: `not JSON: ${(e as Error).message.slice(0, 200)}` });
    return undefined;
  }
}

export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Short, safe rendering of an unexpected value for a reject reason. */
export function show(v: unknown): string {
  try {
    return (JSON.stringify(v) ?? String(v)).slice(0, 60);
  } catch {
    return typeof v;
  }
}

const DECIMAL = /^\d+(\.\d+)?([eE][-+]?\d+)?$/;

/** A decimal number given as a JSON number or a plain numeric string; NaN otherwise (the schema rejects it). */
export function decimal(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.length <= 64 && DECIMAL.test(v)) return Number(v);
  return Number.NaN;
}

/** A non-negative safe integer (trade ids); undefined otherwise. */
export function safeId(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?(Z|z|[+-]\d{2}:\d{2})$/;

/**
 * RFC 3339 (`2023-10-06T17:35:55.440295Z`, any number of fraction digits, `Z` or an offset) → epoch ms,
 * truncated, computed from the digits (not `Date.parse`, whose handling of µs/ns fractions is lenient and
 * engine-specific). NaN when malformed or not a real calendar time.
 */
export function rfc3339ToMs(v: unknown): number {
  if (typeof v !== 'string') return Number.NaN;
  const m = RFC3339.exec(v);
  if (m === null) return Number.NaN;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  const [Y, M, D, H, I, S] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (M < 1 || M > 12 || D < 1 || D > 31 || H > 23 || I > 59 || S > 59) return Number.NaN;
  const base = Date.UTC(Y, M - 1, D, H, I, S);
  // Date.UTC rolls 31 February over into March: refuse dates that do not exist.
  if (new Date(base).getUTCDate() !== D) return Number.NaN;
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    offsetMin = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  return base + Number(frac.padEnd(3, '0').slice(0, 3)) - offsetMin * 60_000;
}

/** The first few schema issues as `path: message; …`. */
function summarise(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 4)
    .map((i) => (i.path.length > 0 ? `${i.path.map(String).join('.')}: ` : '') + i.message)
    .join('; ');
}

/**
 * Validates a candidate trade with `TradeSchema.safeParse` (through `validate`, which also remembers the
 * result so the in-process bus does not check it again): a trade, or a reject saying which field is wrong.
 */
export function pushTrade(out: Parsed, candidate: Record<string, unknown>, what: string): void {
  const r = validate(TradeSchema, candidate);
  if (r.success) out.trades.push(r.data);
  else out.rejects.push({ kind: 'invalid', reason: `${what}: ${summarise(r.error.issues)}` });
}
