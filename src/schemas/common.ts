import { z } from 'zod';

/** Epoch milliseconds UTC, bounded to a sane range (2009-01-01 .. 2100-01-01) so a seconds or µs value is rejected. */
export const EpochMs = z
  .number()
  .int()
  .min(1_230_768_000_000, 'timestamp before 2009: not epoch milliseconds?')
  .max(4_102_444_800_000, 'timestamp after 2100: not epoch milliseconds?');

/** Canonical pair: BASE/QUOTE in upper case, e.g. `BTC/USD`, `ETH/USDT`. URLs use a dash (`BTC-USD`). */
export const Pair = z.string().regex(/^[A-Z0-9]{2,12}\/[A-Z0-9]{2,12}$/, 'pair must look like BTC/USD');

export const Exchange = z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'exchange must be a lower-case id');

export const PositiveFinite = z.number().finite().positive();

export function pairToUrl(pair: string): string {
  return pair.replace('/', '-');
}

export function pairFromUrl(s: string): string {
  return s.replace('-', '/').toUpperCase();
}
