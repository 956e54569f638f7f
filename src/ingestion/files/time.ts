/**
 * Timestamps from files, converted to epoch milliseconds without floating-point surprises: a trade at
 * 12:00:59.9999 must stay in the 12:00 minute, so decimal seconds are converted from their text.
 */

/** Decimal seconds as text (`1762820035.9822779`) → epoch ms, truncated (never rounded up a minute). */
export function secondsTextToMs(text: string): number | undefined {
  const m = /^(\d{1,12})(?:\.(\d+))?$/.exec(text.trim());
  if (m === null) return undefined;
  const frac = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return Number(m[1]) * 1000 + Number(frac);
}

/**
 * An epoch number in s, ms, µs or ns (by magnitude, for dates 2001..2286) → ms, truncated. Also accepts
 * decimal text. Returns undefined for anything else.
 */
export function epochToMs(value: string | number): number | undefined {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value.trim();
  if (!/^\d+(\.\d+)?$/.test(text)) return undefined;
  const [int = ''] = text.split('.');
  const digits = int.length;
  if (digits <= 10) return secondsTextToMs(text);
  const n = Number(int);
  if (digits <= 13) return n;
  if (digits <= 16) return Math.floor(n / 1_000);
  if (digits <= 19) return Number(BigInt(int) / 1_000_000n);
  return undefined;
}

/** Epoch (any unit) or ISO 8601 **with** an offset or `Z` → ms; naive local times are refused (ambiguous). */
export function parseTime(text: string): number | undefined {
  const t = text.trim();
  const epoch = epochToMs(t);
  if (epoch !== undefined) return epoch;
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(t)) return undefined;
  const ms = Date.parse(t.replace(' ', 'T'));
  return Number.isFinite(ms) ? ms : undefined;
}
