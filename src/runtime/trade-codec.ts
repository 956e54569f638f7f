import { type Trade, type TradeEvent, tradeOutOfBounds, type Watermark } from '../schemas/trade.ts';

/**
 * The compact binary encoding of `trades` records on Kafka (version 1), what producers write by default: a trade
 * is ~65 bytes instead of ~190 of JSON, and decoding it is a few reads at fixed offsets instead of JSON.parse plus a
 * schema walk (together most of the candle service's CPU on a JSON topic). Consumers read both: a value whose first
 * byte is `MAGIC` is binary, anything else is JSON, so JSON records (older data, a producer with
 * CRYPTOCAST_KAFKA_ENCODING=json, a hand-typed test record) stay readable, and `kcat`-style debugging can switch
 * producers to JSON. The layout is part of the topic contract (AsyncAPI: message `trades.binary`).
 *
 * Little-endian; strings are UTF-8 with a length prefix (u8 for exchange and pair, u16 for tradeId):
 *
 *     0  u8   magic 0xCC (JSON text starts with `{` or blanks, never 0xCC)
 *     1  u8   format version: 1
 *     2  u8   type: 0 = trade, 1 = watermark
 *     trade:     3 u8 side (0 buy, 1 sell, 2 unknown) · 4 f64 price · 12 f64 qty · 20 f64 tradeTs · 28 f64 receivedTs
 *                · 36 exchange · pair · tradeId
 *     watermark: 3 u8 final (0 or 1; 2 = absent) · 4 f64 ts · 12 exchange · pair
 *
 * Decoding checks what the schema checks (TradeEventSchema): the same values are accepted and the same objects come
 * out (test/unit/runtime/trade-codec.test.ts compares with the schema on random and hostile inputs).
 */
/** The layout for the AsyncAPI document (message `trades.binary`): the contract, next to the code that reads it. */
export const TRADES_BINARY_LAYOUT = {
  description:
    'Binary trades record, format version 1 (what producers write by default; JSON records remain valid and ' +
    'are told apart by the first byte). Little-endian. Strings: UTF-8 with a length prefix (u8 for exchange ' +
    'and pair, u16 for tradeId). Decoded values obey the JSON schema of the trades message.',
  header: [
    { offset: 0, type: 'u8', field: 'magic', value: '0xCC' },
    { offset: 1, type: 'u8', field: 'version', value: 1 },
    { offset: 2, type: 'u8', field: 'type', value: '0 = trade, 1 = watermark' },
  ],
  trade: [
    { offset: 3, type: 'u8', field: 'side', value: '0 buy, 1 sell, 2 unknown' },
    { offset: 4, type: 'f64', field: 'price' },
    { offset: 12, type: 'f64', field: 'qty' },
    { offset: 20, type: 'f64', field: 'tradeTs', value: 'epoch ms (an integer)' },
    { offset: 28, type: 'f64', field: 'receivedTs', value: 'epoch ms (an integer)' },
    { offset: 36, type: 'u8 + bytes', field: 'exchange' },
    { type: 'u8 + bytes', field: 'pair' },
    { type: 'u16 + bytes', field: 'tradeId', value: 'ends the record' },
  ],
  watermark: [
    { offset: 3, type: 'u8', field: 'final', value: '0 false, 1 true, 2 absent' },
    { offset: 4, type: 'f64', field: 'ts', value: 'epoch ms (an integer)' },
    { offset: 12, type: 'u8 + bytes', field: 'exchange' },
    { type: 'u8 + bytes', field: 'pair', value: 'ends the record' },
  ],
} as const;

export const MAGIC = 0xcc;
export const VERSION = 1;
const SIDES = ['buy', 'sell', 'unknown'] as const;
const MIN_TS = 1_230_768_000_000;
const MAX_TS = 4_102_444_800_000;
const PAIR = /^[A-Z0-9]{2,12}\/[A-Z0-9]{2,12}$/;
const EXCHANGE = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function isBinaryTrade(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === MAGIC;
}

export function encodeTradeEvent(e: TradeEvent): Buffer {
  const ex = Buffer.from(e.exchange, 'utf8');
  const pair = Buffer.from(e.pair, 'utf8');
  if (e.type === 'trade') {
    const id = Buffer.from(e.tradeId, 'utf8');
    const b = Buffer.allocUnsafe(36 + 1 + ex.length + 1 + pair.length + 2 + id.length);
    b[0] = MAGIC;
    b[1] = VERSION;
    b[2] = 0;
    b[3] = SIDES.indexOf(e.side);
    b.writeDoubleLE(e.price, 4);
    b.writeDoubleLE(e.qty, 12);
    b.writeDoubleLE(e.tradeTs, 20);
    b.writeDoubleLE(e.receivedTs, 28);
    let o = 36;
    b[o++] = ex.length;
    o += ex.copy(b, o);
    b[o++] = pair.length;
    o += pair.copy(b, o);
    b.writeUInt16LE(id.length, o);
    id.copy(b, o + 2);
    return b;
  }
  const b = Buffer.allocUnsafe(12 + 1 + ex.length + 1 + pair.length);
  b[0] = MAGIC;
  b[1] = VERSION;
  b[2] = 1;
  b[3] = e.final === undefined ? 2 : e.final ? 1 : 0;
  b.writeDoubleLE(e.ts, 4);
  let o = 12;
  b[o++] = ex.length;
  o += ex.copy(b, o);
  b[o++] = pair.length;
  pair.copy(b, o);
  return b;
}

/**
 * Strings seen before, already checked: exchanges and pairs are a handful and usually repeat the previous record's,
 * so their bytes are compared with the last ones and the same string comes back (no new string, no regex).
 */
class Interned {
  private readonly seen = new Map<string, boolean>();
  private readonly pattern: RegExp;
  private last = Buffer.alloc(0);
  private lastText: string | undefined;
  constructor(pattern: RegExp) {
    this.pattern = pattern;
  }
  get(b: Buffer, start: number, end: number): string | undefined {
    const n = end - start;
    const last = this.last;
    if (n === last.length && this.lastText !== undefined) {
      let same = true;
      for (let i = 0; i < n; i++)
        if (b[start + i] !== last[i]) {
          same = false;
          break;
        }
      if (same) return this.lastText;
    }
    const s = b.toString('latin1', start, end);
    let ok = this.seen.get(s);
    if (ok === undefined) {
      // latin1 of ASCII is the UTF-8 text; anything non-ASCII fails the pattern either way.
      ok = this.pattern.test(s);
      if (this.seen.size < 10_000) this.seen.set(s, ok);
    }
    if (!ok) return undefined;
    this.last = Buffer.from(b.subarray(start, end));
    this.lastText = s;
    return s;
  }
}
const exchanges = new Interned(EXCHANGE);
const pairs = new Interned(PAIR);

const epochMs = (x: number) => Number.isInteger(x) && x >= MIN_TS && x <= MAX_TS;

/** A binary trades record → the event, or the reason it is refused (as the schema would refuse it). */
export function decodeTradeEvent(b: Buffer): TradeEvent | string {
  if (b.length < 12 || b[0] !== MAGIC) return 'not a binary trades record';
  if (b[1] !== VERSION) return `binary trades record of format version ${b[1]}, this reader knows ${VERSION}`;
  const type = b[2];
  if (type === 0) {
    if (b.length < 37) return 'binary trade record truncated';
    const side = SIDES[b[3]!];
    if (side === undefined) return `side code ${b[3]} is not buy, sell or unknown`;
    const price = b.readDoubleLE(4);
    const qty = b.readDoubleLE(12);
    const tradeTs = b.readDoubleLE(20);
    const receivedTs = b.readDoubleLE(28);
    const outOfBounds = tradeOutOfBounds({ price, qty }); // the schema's bounds (NaN and infinities fail them)
    if (outOfBounds !== undefined) return outOfBounds;
    if (!epochMs(tradeTs)) return `tradeTs ${tradeTs} is not epoch milliseconds (2009..2100)`;
    if (!epochMs(receivedTs)) return `receivedTs ${receivedTs} is not epoch milliseconds (2009..2100)`;
    let o = 36;
    const exEnd = o + 1 + b[o]!;
    const exchange = exEnd <= b.length ? exchanges.get(b, o + 1, exEnd) : undefined;
    if (exchange === undefined) return 'exchange must be a lower-case id';
    o = exEnd;
    const pairEnd = o + 1 + (b[o] ?? 0);
    const pair = pairEnd <= b.length && o < b.length ? pairs.get(b, o + 1, pairEnd) : undefined;
    if (pair === undefined) return 'pair must look like BTC/USD';
    o = pairEnd;
    if (o + 2 > b.length) return 'binary trade record truncated';
    const idEnd = o + 2 + b.readUInt16LE(o);
    if (idEnd !== b.length) return 'binary trade record: tradeId length does not match the record';
    const tradeId = b.toString('utf8', o + 2, idEnd);
    if (tradeId.length < 1 || tradeId.length > 64) return 'tradeId must have 1 to 64 characters';
    const t: Trade = { v: 1, type: 'trade', exchange, pair, price, qty, side, tradeId, tradeTs, receivedTs };
    return t;
  }
  if (type === 1) {
    const final = b[3];
    if (final !== 0 && final !== 1 && final !== 2) return `watermark final code ${final} is not 0, 1 or 2`;
    const ts = b.readDoubleLE(4);
    if (!epochMs(ts)) return `watermark ts ${ts} is not epoch milliseconds (2009..2100)`;
    let o = 12;
    const exEnd = o + 1 + b[o]!;
    const exchange = exEnd <= b.length ? exchanges.get(b, o + 1, exEnd) : undefined;
    if (exchange === undefined) return 'exchange must be a lower-case id';
    o = exEnd;
    const pairEnd = o + 1 + (b[o] ?? 0);
    if (pairEnd !== b.length || o >= b.length)
      return 'binary watermark record: pair length does not match the record';
    const pair = pairs.get(b, o + 1, pairEnd);
    if (pair === undefined) return 'pair must look like BTC/USD';
    const w: Watermark = { v: 1, type: 'watermark', exchange, pair, ts };
    if (final !== 2) w.final = final === 1;
    return w;
  }
  return `binary trades record of unknown type ${type}`;
}
