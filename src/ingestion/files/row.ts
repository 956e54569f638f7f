import { summarise } from '../../runtime/in-process-bus.ts';
import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';
import type { TradeFileReject } from './types.ts';

/**
 * Turning one row's fields into a `Trade` or a reject with a precise reason. Field readers record what is
 * wrong in plain words (`price: not a decimal number ("1e")`) instead of letting a NaN reach the schema,
 * and the schema has the last word on ranges (positive, epoch bounds, pair shape).
 */
export type RowResult = Trade | TradeFileReject;

export function isReject(r: RowResult): r is TradeFileReject {
  return 'reason' in r;
}

export function reject(line: number, reason: string, payload: string): TradeFileReject {
  return { line, reason, payload };
}

/** The fields a reader found, before validation. */
export interface TradeFields {
  exchange: string;
  pair: string | undefined;
  price: number | undefined;
  qty: number | undefined;
  side: 'buy' | 'sell' | 'unknown' | undefined;
  tradeId: string | undefined;
  tradeTs: number | undefined;
  receivedTs: number | undefined;
}

export class Problems {
  readonly list: string[] = [];
  add(text: string): undefined {
    this.list.push(text);
    return undefined;
  }
}

export function toTrade(f: TradeFields, problems: Problems, line: number, payload: string): RowResult {
  if (problems.list.length > 0) return reject(line, problems.list.join('; '), payload);
  const r = validate(TradeSchema, { v: 1, type: 'trade', ...f });
  return r.success ? r.data : reject(line, summarise(r.error), payload);
}

/** A plain decimal (`61837.63`, `.5`, `1e-8`); no hex, no empty string, no `Infinity`, no padding. */
const DECIMAL = /^\+?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?$/;

/** A decimal from text or a JSON number; records a problem and returns undefined otherwise. */
export function decimal(p: Problems, name: string, value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && DECIMAL.test(value)) {
    const n = Number(value);
    if (Number.isFinite(n)) return n;
  }
  return p.add(`${name}: not a decimal number (${show(value)})`);
}

/** An id made of digits (exchanges number their trades), from text or a safe integer. */
export function digitsId(p: Problems, name: string, value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  if (typeof value === 'string' && /^\d{1,40}$/.test(value)) return value;
  return p.add(`${name}: not a trade id (${show(value)})`);
}

/** Taker side from the words files use; an empty cell is `unknown`, anything else is a problem. */
export function sideWord(p: Problems, value: string): TradeFields['side'] {
  switch (value.toLowerCase()) {
    case 'buy':
    case 'b':
      return 'buy';
    case 'sell':
    case 's':
      return 'sell';
    case '':
      return 'unknown';
    default:
      return p.add(`side: not buy or sell (${show(value)})`);
  }
}

/** A short, printable rendering of a bad value for a reason text. */
export function show(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 40 ? text.slice(0, 40) + '…' : text;
}
