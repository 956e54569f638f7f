import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
// undici's own fetch, not Node's bundled copy: Node 24's (7.29) crashes the process with an uncatchable AssertionError
// when a server closes the connection while the body is paused under back-pressure (undici #5360, fixed in #5474).
import { fetch, type Response } from 'undici';
import { CryptocastError, ERR, fail } from '../core/errors.ts';
import { ensureDir } from '../core/files.ts';
import { backoffDelay, parseRetryAfter } from '../core/retry.ts';
import { redactSecrets } from '../core/secrets.ts';
import { archiveKlinesPath } from './locations.ts';

/**
 * Downloads Binance's public 1-minute klines (data.binance.vision) into a data folder laid out as the archive is,
 * each zip verified against the `.CHECKSUM` file published beside it (`<sha256>  <name>`).
 *
 * Protocol per file, in order:
 *  1. skip it when the zip and its checksum file are both here and agree (a finished download is never repeated);
 *  2. read the published checksum (a 404 there or on the zip: the archive has no such file — reported, not fatal);
 *  3. download into `<name>.part`, resuming with an HTTP Range request after a cut connection, retrying 5xx, 429
 *     and network errors with capped back-off (Retry-After honoured);
 *  4. hash the part: a mismatch deletes it and downloads once more; a second mismatch fails with the file's name;
 *  5. rename the part into place, then write the checksum beside it (the marker of a finished file).
 */
export const DEFAULT_ARCHIVE_URL = 'https://data.binance.vision';

export interface ArchiveFile {
  symbol: string;
  period: 'daily' | 'monthly';
  /** `2022-05-01` (daily) or `2022-05` (monthly). */
  date: string;
  /** Archive-relative path of the zip: `data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2022-05-01.zip`. */
  path: string;
}

export interface FetchProgress {
  files: number;
  done: number;
  skipped: number;
  missing: string[];
  bytes: number;
  retries: number;
  current?: string;
}

export interface FetchOptions {
  baseUrl?: string;
  /** The data folder (src/data/locations.ts: fetchedDataDir). */
  dir: string;
  files: readonly ArchiveFile[];
  /** Downloads at once (default 3). */
  concurrency?: number;
  /** Attempts per file for connection errors and 5xx (default 6). */
  attempts?: number;
  timeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  onProgress?(p: Readonly<FetchProgress>): void;
  signal?: AbortSignal;
}

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * The files that cover the months [fromMonth, toMonth] (`YYYY-MM`, inclusive) of each symbol: a monthly zip for each
 * month that has ended before `now`'s month (one file instead of thirty), daily zips up to yesterday for the current
 * one. `period` forces one kind.
 */
export function planArchive(args: {
  symbols: readonly string[];
  fromMonth: string;
  toMonth: string;
  period?: 'auto' | 'daily' | 'monthly';
  now?: number;
}): ArchiveFile[] {
  const parse = (t: string, flag: string) => {
    const m = /^(\d{4})-(\d{2})$/.exec(t);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 12)
      throw fail(ERR.USAGE, `${flag} takes a month like 2022-05 (got "${t}")`);
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, 1);
  };
  const from = parse(args.fromMonth, '--from');
  const to = parse(args.toMonth, '--to');
  if (to < from) throw fail(ERR.USAGE, `--to ${args.toMonth} is before --from ${args.fromMonth}`);
  const now = args.now ?? Date.now();
  const today = Date.UTC(
    new Date(now).getUTCFullYear(),
    new Date(now).getUTCMonth(),
    new Date(now).getUTCDate(),
  );
  const period = args.period ?? 'auto';
  const out: ArchiveFile[] = [];
  for (const symbol of args.symbols) {
    for (let m = from; m <= to; ) {
      const d = new Date(m);
      const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      const month = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
      if (m >= today) break; // nothing published yet
      const monthly = period === 'monthly' || (period === 'auto' && next <= today);
      if (monthly) {
        out.push({
          symbol,
          period: 'monthly',
          date: month,
          path: `data/${archiveKlinesPath(symbol, 'monthly')}/${symbol}-1m-${month}.zip`,
        });
      } else {
        // Daily files appear the day after; the current day's is never there yet.
        for (let day = m; day < Math.min(next, today); day += 86_400_000) {
          const date = new Date(day).toISOString().slice(0, 10);
          out.push({
            symbol,
            period: 'daily',
            date,
            path: `data/${archiveKlinesPath(symbol, 'daily')}/${symbol}-1m-${date}.zip`,
          });
        }
      }
      m = next;
    }
  }
  return out;
}

/** Where a file goes in the data folder (the archive's layout without its leading `data/`). */
export const localPath = (dir: string, f: ArchiveFile): string => join(dir, f.path.replace(/^data\//, ''));

class MissingFile extends Error {}

/** Retryable: the server said 5xx/429, or the connection failed or was cut. */
class Transient extends Error {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

const sha256File = async (file: string): Promise<string> => {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
};

/** `<64 hex>  <name>` → the hash, when the name is the file's. */
export function parseChecksum(text: string, name: string): string | undefined {
  const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$/m.exec(text.trim());
  if (!m || m[2] !== name) return undefined;
  return m[1]!.toLowerCase();
}

export class ArchiveFetcher {
  readonly progress: FetchProgress = { files: 0, done: 0, skipped: 0, missing: [], bytes: 0, retries: 0 };
  private readonly o: Required<Pick<FetchOptions, 'concurrency' | 'attempts' | 'timeoutMs' | 'backoff'>> &
    FetchOptions;
  private readonly base: string;

  constructor(o: FetchOptions) {
    this.o = {
      concurrency: 3,
      attempts: 6,
      timeoutMs: 60_000,
      backoff: { initialMs: 500, maxMs: 15_000 },
      ...o,
    };
    this.base = (o.baseUrl ?? DEFAULT_ARCHIVE_URL).replace(/\/+$/, '');
    this.progress.files = o.files.length;
  }

  /** Every file, `concurrency` at a time; resolves with the progress (missing files listed), throws on a failure. */
  async run(): Promise<FetchProgress> {
    const queue = [...this.o.files];
    let failure: unknown;
    const worker = async () => {
      while (queue.length > 0 && failure === undefined && !this.o.signal?.aborted) {
        const f = queue.shift()!;
        try {
          await this.one(f);
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, queue.length) }, worker));
    if (failure !== undefined) throw failure;
    return this.progress;
  }

  private async one(f: ArchiveFile): Promise<void> {
    const zip = localPath(this.o.dir, f);
    const sumFile = `${zip}.CHECKSUM`;
    const name = f.path.split('/').pop()!;
    this.progress.current = name;
    if (existsSync(zip) && existsSync(sumFile)) {
      const expected = parseChecksum(readFileSync(sumFile, 'utf8'), name);
      if (expected !== undefined && (await sha256File(zip)) === expected) {
        this.progress.skipped++;
        this.progress.done++;
        this.report();
        return;
      }
    }
    ensureDir(dirname(zip));
    let checksumText: string;
    try {
      checksumText = await this.withRetries(name, () => this.text(`${this.base}/${f.path}.CHECKSUM`));
    } catch (err) {
      if (!(err instanceof MissingFile)) throw err;
      this.progress.missing.push(name);
      this.progress.done++;
      this.report();
      return;
    }
    const expected = parseChecksum(checksumText, name);
    if (expected === undefined)
      throw fail(
        ERR.DOWNLOAD,
        `${name}.CHECKSUM: not a checksum of ${name} ("${checksumText.slice(0, 80)}")`,
      );
    const part = `${zip}.part`;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.withRetries(name, () => this.download(`${this.base}/${f.path}`, part));
      } catch (err) {
        if (!(err instanceof MissingFile)) throw err;
        this.progress.missing.push(name);
        this.progress.done++;
        this.report();
        return;
      }
      const actual = await sha256File(part);
      if (actual === expected) break;
      unlinkSync(part);
      if (attempt === 2)
        throw fail(
          ERR.CHECKSUM,
          `${name}: sha256 ${actual} does not match the published ${expected}, twice (the file was deleted)`,
        );
      this.progress.retries++;
    }
    renameSync(part, zip);
    writeFileSync(`${sumFile}.tmp`, checksumText.endsWith('\n') ? checksumText : `${checksumText}\n`);
    renameSync(`${sumFile}.tmp`, sumFile);
    this.progress.done++;
    this.report();
  }

  private report(): void {
    this.o.onProgress?.(this.progress);
  }

  private async withRetries<T>(name: string, op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        if (attempt + 1 >= this.o.attempts || this.o.signal?.aborted)
          throw fail(ERR.DOWNLOAD, `${name}: ${redactSecrets(err.message)} (after ${attempt + 1} attempts)`);
        this.progress.retries++;
        this.report();
        await sleep(err.retryAfterMs ?? backoffDelay(attempt, this.o.backoff), undefined, {
          signal: this.o.signal,
        }).catch(() => {});
      }
    }
  }

  private async request(url: string, headers: Record<string, string> = {}): Promise<Response> {
    const signal = this.o.signal
      ? AbortSignal.any([this.o.signal, AbortSignal.timeout(this.o.timeoutMs)])
      : AbortSignal.timeout(this.o.timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, { headers, signal, redirect: 'follow' });
    } catch (err) {
      if (this.o.signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Transient(`${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new MissingFile(url);
    }
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel();
      throw new Transient(`${url}: HTTP ${res.status}`, parseRetryAfter(res.headers.get('retry-after')));
    }
    if (!res.ok && res.status !== 206 && res.status !== 416) {
      await res.body?.cancel();
      throw fail(ERR.DOWNLOAD, `${url}: HTTP ${res.status} ${res.statusText}`);
    }
    return res;
  }

  private async text(url: string): Promise<string> {
    const res = await this.request(url);
    try {
      return await res.text();
    } catch (err) {
      throw new Transient(`${url}: ${(err as Error).message}`);
    }
  }

  /** Into `part`, continuing a partial file with a Range request (a server that ignores it sends it whole). */
  private async download(url: string, part: string): Promise<void> {
    const have = existsSync(part) ? statSync(part).size : 0;
    const res = await this.request(url, have > 0 ? { range: `bytes=${have}-` } : {});
    if (res.status === 416) {
      // The part is already whole (or longer than the file: then the hash says so and it is fetched again).
      await res.body?.cancel();
      return;
    }
    if (!res.body) throw new Transient(`${url}: empty response`);
    const append = res.status === 206 && have > 0;
    // Each chunk is written (awaited) before the next is read: when the connection is lost, every byte received is in
    // the part for the Range request to continue from. (A stream pipeline destroys its file stream on error, dropping
    // writes still queued: under load, a cut download kept nothing and started over.)
    const file = await open(part, append ? 'a' : 'w');
    let failure: unknown;
    try {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await file.write(value);
        this.progress.bytes += value.length;
      }
    } catch (err) {
      failure = err;
    } finally {
      await file.close();
    }
    if (failure !== undefined) {
      if (this.o.signal?.aborted) throw failure;
      if (failure instanceof CryptocastError) throw failure;
      throw new Transient(
        `${url}: connection lost after ${statSync(part).size} bytes (${(failure as Error).message})`,
      );
    }
  }
}
