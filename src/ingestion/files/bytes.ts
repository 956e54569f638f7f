import { constants, createReadStream, openSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { Unzip, UnzipInflate, unzipSync } from 'fflate';
import { ERR, fail } from '../../core/errors.ts';

/**
 * A recorded file's bytes, decompressed transparently. Compression is told by magic bytes, not by the name:
 * recordings get renamed, and a `.gz` that is not gzip must fail loudly rather than be read as text.
 * Zip is read because Binance public data comes as one CSV per zip; the first file entry is read.
 */
export type Compression = 'gzip' | 'zip' | 'none';

export async function compressionOf(path: string): Promise<Compression> {
  // A pipe (a FIFO, /dev/stdin) cannot be read at a position (ESPIPE), and what a read takes from it is gone from what
  // follows: it is told by `fileChunks` from the stream's own first bytes. Here it is only found readable.
  if (!(await stat(path)).isFile()) return 'none';
  const fh = await open(path, 'r');
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await fh.read(magic, 0, 4, 0);
    return compressionOfBytes(magic.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export function compressionOfBytes(b: Uint8Array): Compression {
  if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) return 'zip';
  return 'none';
}

/**
 * Streams the decompressed content in chunks, in bounded memory. A corrupt or truncated archive throws
 * from the iteration (after the good chunks before it); breaking out early releases the file.
 */
export async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  const raw = await openRaw(path);
  try {
    // The compression from the stream's first bytes, kept and read on, not from a read at position 0 aside: a pipe
    // (`candles --input` on a FIFO) failed with ESPIPE, and such a read would have taken its first bytes away.
    const chunks = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const head: Buffer[] = [];
    let headBytes = 0;
    while (headBytes < 4) {
      const next = await chunks.next();
      if (next.done) break;
      head.push(next.value);
      headBytes += next.value.length;
    }
    const compression = compressionOfBytes(head.length === 1 ? head[0]! : Buffer.concat(head));
    const all = (async function* () {
      yield* head;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    })();
    if (compression === 'none') yield* all;
    else if (compression === 'gzip') yield* gunzipStream(Readable.from(all));
    else yield* unzipFirstEntry(all);
  } finally {
    raw.destroy();
  }
}

/**
 * A regular file is read by the thread pool; a pipe is not. A blocking read of a pipe (or a blocking open, before its
 * writer comes) holds a thread-pool thread until the writer writes or closes, and Node's exit joins those threads: a
 * command stopped by a signal while reading a quiet pipe printed its message and never ended. A pipe is opened
 * non-blocking and read by the event loop (a net.Socket on its descriptor, as Node reads its own stdin pipe), which
 * waits for a writer that has not come yet and ends when the last writer closes.
 */
async function openRaw(path: string): Promise<Readable> {
  const kind = await stat(path);
  if (!kind.isFIFO() && !kind.isSocket()) return createReadStream(path, { highWaterMark: 256 * 1024 });
  // Non-blocking, the open returns at once (a FileHandle would close the descriptor when collected: a plain one).
  return new Socket({
    fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK),
    readable: true,
    writable: false,
  });
}

async function* gunzipStream(raw: Readable): AsyncGenerator<Buffer> {
  const gunzip = createGunzip();
  // `pipe` does not forward a read error: do it, so that it ends the iteration instead of hanging it.
  raw.on('error', (err) => gunzip.destroy(err));
  raw.pipe(gunzip);
  try {
    yield* gunzip;
  } finally {
    gunzip.destroy();
  }
}

async function* unzipFirstEntry(raw: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  let failure: Error | undefined;
  let entry: string | undefined;
  let ended = false;
  const unzip = new Unzip((file) => {
    if (entry !== undefined || file.name.endsWith('/')) return;
    entry = file.name;
    file.ondata = (err, data, final) => {
      if (err) failure = err;
      else out.push(data);
      if (final) ended = true;
    };
    file.start();
  });
  unzip.register(UnzipInflate);
  for await (const chunk of raw) {
    // fflate decodes synchronously inside `push`: what it produced is drained before reading on.
    unzip.push(chunk);
    if (failure) throw failure;
    while (out.length > 0) yield out.shift()!;
    if (ended) return;
  }
  unzip.push(new Uint8Array(0), true);
  if (failure) throw failure;
  while (out.length > 0) yield out.shift()!;
  if (entry === undefined) throw fail(ERR.INPUT, 'zip archive without a file entry');
  if (!ended) throw fail(ERR.INPUT, `zip entry ${entry} is truncated`);
}

/** The whole decompressed content, for single-document formats (JSON). Throws on a corrupt archive. */
export async function readWholeFile(path: string): Promise<Uint8Array> {
  const buf = await readFile(path);
  const compression = compressionOfBytes(buf);
  if (compression === 'gzip') return gunzipSync(buf);
  if (compression === 'zip') {
    const files = Object.entries(unzipSync(buf)).filter(([name]) => !name.endsWith('/'));
    const first = files[0];
    if (first === undefined) throw fail(ERR.INPUT, 'zip archive without a file entry');
    return first[1];
  }
  return buf;
}

/** Up to `bytes` of the decompressed beginning (format detection). Throws when the file is unreadable. */
export async function fileHead(path: string, bytes = 8192): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of fileChunks(path)) {
    parts.push(chunk);
    size += chunk.byteLength;
    if (size >= bytes) break;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}
