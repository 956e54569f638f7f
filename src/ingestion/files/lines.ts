import { isUtf8 } from 'node:buffer';

/**
 * Splits a byte stream into lines, in bounded memory, for the line-oriented formats (CSV, captures).
 *
 * Written here rather than with `readline` because hostile input must stay cheap and local: a line longer
 * than `maxBytes` is not buffered (its rest is skipped up to the next newline) and becomes one bad line; a
 * line that is not valid UTF-8 is reported, not silently decoded with replacement characters; a stream
 * that fails (corrupt gzip) ends with one bad line saying where. Lines are numbered from 1 (physical lines,
 * `\n`-terminated; a trailing `\r` is dropped; a UTF-8 BOM on line 1 is dropped).
 */
export interface TextLine {
  n: number;
  text: string;
}
export interface BadLine {
  n: number;
  error: string;
  payload: string;
}
export type LineItem = TextLine | BadLine;

export function isBadLine(l: LineItem): l is BadLine {
  return 'error' in l;
}

/** Longer than any real trade line (~250 bytes) by far, small enough to keep hostile input cheap. */
export const MAX_LINE_BYTES = 64 * 1024;
/** How much of a giant line is kept as the reject's payload. */
const GIANT_PREFIX_BYTES = 1024;

/** Yields the lines of each chunk as one array (far fewer async steps than one per line). */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array>,
  maxBytes = MAX_LINE_BYTES,
): AsyncGenerator<LineItem[]> {
  let parts: Buffer[] = [];
  let partsBytes = 0;
  /** Bytes of the current line when it is over the limit (its parts are no longer kept), else -1. */
  let giantBytes = -1;
  let giantPrefix = Buffer.alloc(0);
  let n = 0;

  const append = (piece: Buffer) => {
    if (piece.length === 0) return;
    if (giantBytes >= 0) {
      giantBytes += piece.length;
      // The kept start must not depend on where chunks happened to end.
      if (giantPrefix.length < GIANT_PREFIX_BYTES)
        giantPrefix = Buffer.concat([
          giantPrefix,
          piece.subarray(0, GIANT_PREFIX_BYTES - giantPrefix.length),
        ]);
    } else if (partsBytes + piece.length > maxBytes) {
      giantPrefix = Buffer.concat([...parts, piece]).subarray(0, GIANT_PREFIX_BYTES);
      giantBytes = partsBytes + piece.length;
      parts = [];
      partsBytes = 0;
    } else {
      parts.push(piece);
      partsBytes += piece.length;
    }
  };
  const take = (): LineItem => {
    n++;
    if (giantBytes >= 0) {
      const bad = {
        n,
        error: `line of ${giantBytes} bytes, longer than the ${maxBytes} allowed (payload cut)`,
        payload: giantPrefix.toString('utf8'),
      };
      giantBytes = -1;
      return bad;
    }
    let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsBytes);
    parts = [];
    partsBytes = 0;
    if (bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    if (n === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    if (!isUtf8(bytes)) return { n, error: 'not valid UTF-8', payload: bytes.toString('utf8') };
    return { n, text: bytes.toString('utf8') };
  };

  try {
    for await (const chunk of chunks) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      const out: LineItem[] = [];
      let start = 0;
      for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
        append(buf.subarray(start, nl));
        out.push(take());
        start = nl + 1;
      }
      append(buf.subarray(start));
      if (out.length > 0) yield out;
    }
  } catch (err) {
    const partial = giantBytes >= 0 ? giantPrefix : Buffer.concat(parts);
    yield [
      {
        n: n + 1,
        error: `unreadable from here on: ${(err as Error).message}`,
        payload: partial.subarray(0, GIANT_PREFIX_BYTES).toString('utf8'),
      },
    ];
    return;
  }
  if (partsBytes > 0 || giantBytes >= 0) yield [take()];
}
