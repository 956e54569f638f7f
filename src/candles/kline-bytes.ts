/**
 * A byte parser for headerless numeric CSV (Binance kline files: `open_time,open,high,low,close,volume,…`), the
 * fast path of `readOhlcv`: a year of daily files is 525,600 lines, and a general CSV parser (csv-parse: quoting,
 * a string per field) spent most of a backfill's reading time on them.
 *
 * It gives exactly what the general path gives: the same fields (trimmed), the same numbers (`Number(text)`), the
 * same line numbers for rejects. Numbers: a plain decimal of at most 15 significant digits is an integer mantissa m
 * and a power of ten p ≤ 10^22, both exact doubles, and IEEE division rounds m / p correctly, which is what
 * `Number(text)` returns (the classic exact fast path of decimal → binary conversion); anything else (signs,
 * exponents, more digits, stray characters) is handed to `Number` as text. Files with a quote character anywhere
 * are not for this parser (`fitsKlineBytes`): the general path handles quoting.
 */

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const COMMA = 44;
const LF = 10;
const CR = 13;
const DOT = 46;
const QUOTE = 34;

/** True when `bytes` can go through `parseKlineLines`: no quoting, and the first field of the first line is numeric. */
export function fitsKlineBytes(bytes: Uint8Array): boolean {
  if (bytes.indexOf(QUOTE) !== -1) return false;
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0; // BOM
  while (i < bytes.length && (bytes[i] === LF || bytes[i] === CR || isBlank(bytes[i]!))) i++;
  return i < bytes.length && bytes[i]! >= 48 && bytes[i]! <= 57;
}

const isBlank = (b: number) => b === 32 || b === 9;

/**
 * The fields of one line as the callback sees them: `count` fields, field k from `start[k]` to `end[k]` (trimmed of
 * spaces and tabs), numbers by `number(k)` (NaN when empty, as the general path's `num`), text by `text(k)`.
 */
export class KlineLine {
  bytes: Uint8Array = new Uint8Array(0);
  count = 0;
  readonly start = new Int32Array(64);
  readonly end = new Int32Array(64);
  /** Physical line number, 1-based (what csv-parse's `info.lines` says). */
  line = 0;
  /** Length of the line in bytes (without its line end). */
  length = 0;

  text(k: number): string | undefined {
    if (k >= this.count) return undefined;
    return latin1(this.bytes, this.start[k]!, this.end[k]!);
  }

  /** The field as a number, exactly `Number(text)`; NaN when missing or empty. */
  number(k: number): number {
    if (k >= this.count) return Number.NaN;
    const b = this.bytes;
    const s = this.start[k]!;
    const e = this.end[k]!;
    if (s === e) return Number.NaN;
    let m = 0;
    let digits = 0;
    let frac = -1;
    for (let i = s; i < e; i++) {
      const c = b[i]!;
      if (c >= 48 && c <= 57) {
        if (digits > 0 || c !== 48) digits++; // leading zeros are not significant
        m = m * 10 + (c - 48);
        if (frac >= 0) frac++;
      } else if (c === DOT && frac < 0) frac = 0;
      else return Number(latin1(b, s, e));
    }
    if (digits > 15 || frac > 22 || (frac === 0 && e - s === 1)) return Number(latin1(b, s, e));
    return frac > 0 ? m / POW10[frac]! : m;
  }
}

function latin1(b: Uint8Array, s: number, e: number): string {
  // Short fields: String.fromCharCode over the bytes beats a Buffer decode call.
  let out = '';
  for (let i = s; i < e; i++) out += String.fromCharCode(b[i]!);
  return out;
}

/**
 * Calls `onLine` for every non-empty line of `bytes`, fields split on commas and trimmed. Lines of only blanks are
 * skipped, as the general path's `skip_empty_lines` with `trim` does.
 */
export function parseKlineLines(bytes: Uint8Array, onLine: (l: KlineLine) => void): void {
  const l = new KlineLine();
  l.bytes = bytes;
  const len = bytes.length;
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let line = 0;
  while (i < len) {
    line++;
    let eol = bytes.indexOf(LF, i);
    if (eol === -1) eol = len;
    let end = eol;
    if (end > i && bytes[end - 1] === CR) end--;
    let count = 0;
    let fs = i;
    let nonBlank = false;
    for (let j = i; j <= end; j++) {
      if (j === end || bytes[j] === COMMA) {
        let a = fs;
        let z = j;
        while (a < z && isBlank(bytes[a]!)) a++;
        while (z > a && isBlank(bytes[z - 1]!)) z--;
        if (a < z) nonBlank = true;
        if (count < l.start.length) {
          l.start[count] = a;
          l.end[count] = z;
        }
        count++;
        fs = j + 1;
      }
    }
    if (nonBlank || count > 1) {
      l.count = Math.min(count, l.start.length);
      l.line = line;
      l.length = end - i;
      onLine(l);
    }
    i = eol + 1;
  }
}
