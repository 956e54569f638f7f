import cliProgress from 'cli-progress';
import { n } from '../../app/progress.ts';
import { candleFiles, readOhlcv } from '../../candles/ohlcv-files.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { checkOutputFile, refuseOverwritingInput } from '../../core/files.ts';
import { urlWithoutCredentials } from '../../core/secrets.ts';
import { onStopSignal, untilAborted } from '../../core/stop-signals.ts';
import { backfillFeatures } from '../../features/backfill.ts';
import { FeatureCsvWriter } from '../../features/csv.ts';
import { toRecord } from '../../features/feature-service.ts';
import { TECHNICAL_SET } from '../../features/feature-writer.ts';
import { NEWS_COLUMNS } from '../../features/news.ts';
import { newsFeaturesFrom } from '../../features/news-recording.ts';
import { withFeatureStore } from '../../features/store/open.ts';
import type { FeatureStore } from '../../features/store/store.ts';
import { TechnicalFeatures } from '../../features/technical.ts';
import type { FeatureVectorRecord } from '../../schemas/feature.ts';

/**
 * `cryptocast features`: candles (any OHLCV CSV, Binance kline files, or `cryptocast candles` output) → one feature
 * row per candle, with the very code the live feature service runs.
 */
export async function features(opts: {
  candles: string;
  output?: string;
  pair?: string;
  store?: string;
  exchange: string;
  news?: string;
  sentiment?: string;
  json?: boolean;
}): Promise<void> {
  if (opts.output === undefined && opts.store === undefined)
    throw new UsageError('give --output FILE.csv, --store URL, or both');
  const engine = new TechnicalFeatures();
  if (opts.news !== undefined && opts.store !== undefined)
    throw new UsageError('--news joins news features into the CSV output; storing them is not supported yet');
  const news =
    opts.news === undefined ? undefined : await newsFeaturesFrom(opts.news, opts.sentiment ?? 'local');
  const files = candleFiles(opts.candles);
  if (opts.output !== undefined) {
    refuseOverwritingInput(opts.output, [opts.candles, ...files]);
    checkOutputFile(opts.output);
  }
  // A store that fails (cannot be opened, does not answer, a write refused) ends the command with one catalogued line.
  if (opts.store === undefined) return compute(undefined);
  return withFeatureStore(opts.store, async (store) => {
    await store.migrate(TECHNICAL_SET);
    await compute(store);
  });

  async function compute(store: FeatureStore | undefined): Promise<void> {
    const writer = opts.output ? new FeatureCsvWriter(opts.output, news ? NEWS_COLUMNS : []) : undefined;
    const bar = new cliProgress.SingleBar(
      {
        format: 'features [{bar}] {value}/{total} files · {rows} rows · {ready} ready',
        hideCursor: true,
        noTTYOutput: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let rows = 0;
    const pending: FeatureVectorRecord[] = [];
    if (files.length > 1) bar.start(files.length, 0, { rows: 0, ready: 0 });
    let rejects = 0;
    let ready = 0;
    const reject = (where: string, reason: string) => {
      rejects++;
      if (rejects <= 10) process.stderr.write(`rejected ${where}: ${reason}\n`);
    };
    // A file whose name says another pair than --pair is left out whole: its line says so, and the summary counts
    // it as a file (it was counted among the candles rejected: "2 candles rejected" for two files of another pair).
    let otherPairFiles = 0;
    const leaveOut = (file: string, reason: string) => {
      otherPairFiles++;
      if (otherPairFiles <= 10) process.stderr.write(`rejected ${file}: ${reason}\n`);
    };
    const started = performance.now();
    let resets = 0;
    let nonFinite = 0;
    // With a CSV output, a stop removes its temporary file (it stayed beside the output, hidden, for good) and ends with
    // exit 130. The store alone keeps the default: what it took is committed, and a re-run upserts the same rows.
    const abort = new AbortController();
    const stopListening = writer ? onStopSignal(() => abort.abort()) : () => {};
    try {
      if (store !== undefined && writer === undefined) {
        // Store only: the column path (the same engine and rows, no object per row: src/features/backfill.ts).
        const stats = await backfillFeatures({
          files,
          store,
          exchange: opts.exchange,
          pair: opts.pair,
          onReject: reject,
          onOtherPairFile: leaveOut,
          // Machine-readable progress: what is committed so far (a prefix of the stream), for scripts and tests.
          onStored: opts.json
            ? (stored) => process.stdout.write(`${JSON.stringify({ event: 'stored', rows: stored })}\n`)
            : undefined,
          onFile: (fileIndex, s) => {
            if (files.length > 1)
              bar.update(fileIndex + 1, {
                rows: s.rows.toLocaleString('en-US'),
                ready: s.ready.toLocaleString('en-US'),
              });
          },
        });
        rows = stats.rows;
        ready = stats.ready;
        resets = stats.resets;
        nonFinite = stats.nonFinite;
      } else {
        for (const [fileIndex, file] of files.entries()) {
          for await (const batch of untilAborted(
            readOhlcv(file, { pair: opts.pair }),
            abort.signal,
            interrupted,
          )) {
            for (const r of batch.rejects)
              if (r.otherPair === undefined) reject(`${r.file} line ${r.line}`, r.reason);
              else leaveOut(r.file, r.reason);
            const out = [];
            for (const c of batch.candles) {
              const bad = engine.problem(c);
              if (bad !== undefined) {
                reject(`${c.pair} ${new Date(c.windowStart).toISOString()}`, bad);
                continue;
              }
              try {
                const v = engine.update(c);
                // Point in time: the news of the candle's base coin, as available at the candle's close.
                if (news) v.values.push(...news.at(v.pair.split('/')[0]!, v.windowEnd));
                if (v.ready) ready++;
                out.push(v);
              } catch (err) {
                reject(`${c.pair} ${new Date(c.windowStart).toISOString()}`, (err as Error).message);
              }
            }
            rows += out.length;
            await writer?.write(out);
            // Idempotent upserts: re-running a backfill over the same candles changes nothing. Written in
            // large batches: per-write costs (transaction, upsert, online update) are paid per 50,000 rows.
            if (store) {
              for (const v of out) pending.push(toRecord(opts.exchange, v));
              if (pending.length >= 50_000) await store.write(TECHNICAL_SET, pending.splice(0));
            }
          }
          if (files.length > 1)
            bar.update(fileIndex + 1, {
              rows: rows.toLocaleString('en-US'),
              ready: ready.toLocaleString('en-US'),
            });
        }
        // Refused before the output is committed: a failed command leaves no file (it left a header-only one).
        if (rows === 0) throw noRows(opts.candles, rejects, otherPairFiles, opts.pair);
        if (store) await store.write(TECHNICAL_SET, pending.splice(0));
        await writer?.close();
        resets = engine.resets;
        nonFinite = engine.nonFinite;
      }
    } catch (err) {
      await writer?.abort();
      throw err;
    } finally {
      stopListening();
      if (files.length > 1) bar.stop();
    }
    // Candles the recording does not cover get no news, or months-old scores that look like news (news-recording.ts).
    const outside = news?.outsideSpan();
    if (outside) process.stderr.write(`${outside}\n`);
    // The store without its password (CRYPTOCAST_STORE_BACKFILL may carry one): written past the logger's redaction.
    const where = [opts.output, opts.store && urlWithoutCredentials(opts.store)]
      .filter(Boolean)
      .join(' and ');
    process.stderr.write(
      `${n(rows)} feature rows (${n(ready)} ready) into ${where} in ${((performance.now() - started) / 1000).toFixed(1)} s` +
        `${resets ? `; ${n(resets)} gaps restarted the warm-up` : ''}${rejects ? `; ${n(rejects)} candles rejected` : ''}` +
        `${otherPairFiles ? `; ${n(otherPairFiles)} ${otherPairFiles === 1 ? 'file of another pair' : 'files of other pairs'} left out` : ''}` +
        `${nonFinite ? `; ${n(nonFinite)} vectors with a non-finite value left not ready` : ''}\n`,
    );
    if (rows === 0) throw noRows(opts.candles, rejects, otherPairFiles, opts.pair);
  }
}

function noRows(candles: string, rejects: number, otherPairFiles: number, pair?: string): Error {
  const why = [
    rejects ? `all ${n(rejects)} candles rejected: the first reasons are above` : '',
    otherPairFiles
      ? `${rejects ? '' : 'all '}${n(otherPairFiles)} ${otherPairFiles === 1 ? 'file is' : 'files are'} of other pairs than --pair ${pair}`
      : '',
  ].filter(Boolean);
  return fail(ERR.INPUT, `no feature rows from ${candles}${why.length ? ` (${why.join('; ')})` : ''}`);
}

/** Stopped by SIGINT/SIGTERM: no CSV is written (a previous one is left as it was); stored rows stay stored. */
function interrupted(): Error {
  return fail(ERR.INTERRUPTED, 'interrupted: no CSV output written (a previous one is left as it was)');
}
