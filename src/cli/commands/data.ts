import cliProgress from 'cli-progress';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import {
  ArchiveFetcher,
  type ArchiveFile,
  DEFAULT_ARCHIVE_URL,
  planArchive,
} from '../../data/binance-archive.ts';
import { DEFAULT_KLINE_SYMBOLS, fetchedDataDir } from '../../data/locations.ts';

/**
 * What the default model and the default replay need when no recordings are at hand: the month of the replay in
 * the README (2022-05, the LUNA collapse) and the 90 days the default model trains on (2022-12 → 2023-02), as in
 * the shared recording, so the figures in the docs can be reproduced from the public archive.
 */
export const DEFAULT_FETCH = [
  { from: '2022-05', to: '2022-05' },
  { from: '2022-12', to: '2023-02' },
] as const;

/**
 * `cryptocast data fetch`: Binance's public 1-minute klines into the data folder the other commands read
 * (`run --replay`, `train --candles`), each file checked against its published checksum, resumable.
 */
export async function dataFetch(opts: {
  from?: string;
  to?: string;
  symbols?: string;
  dir?: string;
  period?: string;
  baseUrl?: string;
  concurrency?: string;
  attempts?: string;
  json?: boolean;
}): Promise<void> {
  if (opts.to !== undefined && opts.from === undefined)
    throw new UsageError('--to needs --from (a month like 2022-05)');
  const symbols = (opts.symbols ?? DEFAULT_KLINE_SYMBOLS.join(','))
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  for (const s of symbols)
    if (!/^[A-Z0-9]{5,20}$/.test(s))
      throw new UsageError(`--symbols: not a Binance symbol: "${s}" (e.g. BTCUSDT)`);
  const period = opts.period ?? 'auto';
  if (period !== 'auto' && period !== 'daily' && period !== 'monthly')
    throw new UsageError(`--period must be auto, daily or monthly (got "${period}")`);
  const concurrency = Number(opts.concurrency ?? '3');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16)
    throw new UsageError(`--concurrency must be a whole number from 1 to 16 (got "${opts.concurrency}")`);
  const attempts = Number(opts.attempts ?? '6');
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100)
    throw new UsageError(`--attempts must be a whole number from 1 to 100 (got "${opts.attempts}")`);
  const ranges = opts.from === undefined ? DEFAULT_FETCH : [{ from: opts.from, to: opts.to ?? opts.from }];
  const files: ArchiveFile[] = ranges.flatMap((r) =>
    planArchive({ symbols, fromMonth: r.from, toMonth: r.to, period }),
  );
  if (files.length === 0)
    throw new UsageError('nothing to fetch: the months asked for have not been published yet');
  const dir = opts.dir ?? fetchedDataDir();
  const baseUrl = opts.baseUrl ?? DEFAULT_ARCHIVE_URL;
  const out = opts.json ? process.stderr : process.stdout;
  out.write(
    `fetching ${files.length} kline files (${symbols.join(', ')}; ${ranges.map((r) => (r.from === r.to ? r.from : `${r.from}..${r.to}`)).join(', ')}) from ${baseUrl} into ${dir}\n`,
  );
  const bar = new cliProgress.SingleBar(
    {
      format: 'klines [{bar}] {value}/{total} files · {mb} MB · {retries} retries · {current}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5_000,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(files.length, 0, { mb: '0.0', retries: 0, current: '' });
  const abort = new AbortController();
  // SIGTERM as well as SIGINT (`kill`, a container's stop): it ended the command with 143 and no word.
  const stopListening = onStopSignal(() => abort.abort());
  const fetcher = new ArchiveFetcher({
    baseUrl,
    dir,
    files,
    concurrency,
    attempts,
    signal: abort.signal,
    onProgress: (p) =>
      bar.update(p.done, { mb: (p.bytes / 1e6).toFixed(1), retries: p.retries, current: p.current ?? '' }),
  });
  const interrupted = () =>
    fail(ERR.INTERRUPTED, 'interrupted', {
      hint: 'run the same command again to carry on: finished files and the part in progress are kept',
    });
  let result: Awaited<ReturnType<ArchiveFetcher['run']>>;
  try {
    result = await fetcher.run();
  } catch (err) {
    // Ctrl-C aborts the download in flight: its AbortError is the interruption, not a failure of its own (the
    // part file stays for the next run to continue).
    if (abort.signal.aborted) throw interrupted();
    throw err;
  } finally {
    bar.stop();
    stopListening();
  }
  if (abort.signal.aborted) throw interrupted();
  const fetched = result.done - result.skipped - result.missing.length;
  if (result.missing.length === files.length)
    throw fail(ERR.DOWNLOAD, `none of the ${files.length} files exists on ${baseUrl} (all 404)`, {
      hint: 'check the symbols and months: the archive starts in 2017 for BTCUSDT',
    });
  const summary = {
    event: 'done',
    dir,
    files: files.length,
    fetched,
    alreadyHere: result.skipped,
    missing: result.missing,
    megabytes: Number((result.bytes / 1e6).toFixed(1)),
    retries: result.retries,
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    out.write(
      `done: ${fetched} downloaded (${summary.megabytes} MB), ${result.skipped} already here, each checked against its published SHA-256; data in ${dir}\n`,
    );
    if (result.missing.length > 0)
      out.write(
        `not on the archive (404), skipped: ${result.missing.join(', ')}\n` +
          '  (a replay or training over those days has a gap there)\n',
      );
  }
}
