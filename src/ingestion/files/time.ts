/**
 * Timestamps from files → epoch milliseconds, without floating-point surprises. A trade at 12:00:59.9999999
 * must stay in the 12:00 minute (candles are checked against the exchange's own), but as a double
 * `1762820039.9999999` *is* 1762820040: so decimal seconds are converted from their text, and sub-millisecond
 * digits are truncated, never rounded up.
 */

/** Decimal seconds as text (`1762820035.9822779`) → epoch ms, truncated. Undefined for anything else. */
export function secondsTextToMs(text: string): number | undefined {
  const m = /^(\d{1,12})(?:\.(\d+))?$/.exec(text.trim());
  if (m === null) return undefined;
  const frac = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return Number(m[1]) * 1000 + Number(frac);
}

/**
 * An unsigned epoch number in s, ms, µs or ns, told apart by its number of integer digits (≤10 s, ≤13 ms,
 * ≤16 µs, ≤19 ns: unambiguous for dates 2001..2286) → ms, truncated. Accepts decimal text (preferred: it
 * is exact) or a number. Undefined for anything else (signs, exponents, more than 19 digits).
 */
export function epochToMs(value: string | number): number | undefined {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value.trim();
  const m = /^(\d{1,19})(?:\.\d+)?$/.exec(text);
  if (m === null) return undefined;
  const int = m[1]!;
  if (int.length <= 10) return secondsTextToMs(text);
  if (int.length <= 13) return Number(int);
  return Number(BigInt(int) / (int.length <= 16 ? 1_000n : 1_000_000n));
}

/** Epoch (any unit, see `epochToMs`) or ISO 8601 **with** an offset or `Z` → ms; naive local times are refused. */
export function parseTime(text: string): number | undefined {
  const t = text.trim();
  const epoch = epochToMs(t);
  if (epoch !== undefined) return epoch;
  // Without a zone a time means a different instant on every machine: refused rather than guessed.
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(t)) return undefined;
  // V8 truncates fractional digits beyond milliseconds (it does not round), as wanted here.
  const ms = Date.parse(t.replace(' ', 'T'));
  return Number.isFinite(ms) ? ms : undefined;
}
