import { createWriteStream, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { setting } from '../../config/env.ts';
import { catalogued, ERR, fail, UsageError } from '../../core/errors.ts';
import { checkOutputFile, lockForThisProcess } from '../../core/files.ts';
import { log } from '../../core/log.ts';
import { KrakenRestBackfill } from '../../ingestion/backfill/kraken-rest.ts';
import { parseTime } from '../../ingestion/files/time.ts';
import type { SourceSink } from '../../ingestion/source.ts';
import { requirePair } from '../../ingestion/symbols.ts';
import { TradeService } from '../../ingestion/trade-service.ts';
import { connectBus } from '../../runtime/connect.ts';

/**
 * `cryptocast backfill`: historical trades over REST with a progress bar, resumable (state file), into a
 * trades CSV (readable by `cryptocast candles` and replay) or onto the bus's `trades` topic.
 */
export async function backfill(opts: {
  exchange: string;
  pair: string;
  since: string;
  until?: string;
  output?: string;
  bus?: string;
  state?: string;
  baseUrl?: string;
}): Promise<void> {
  const pair = requirePair(opts.pair, '--pair');
  const sinceMs = parseTime(opts.since);
  if (sinceMs === undefined)
    throw new UsageError(
      `--since: not a time: "${opts.since}" (ISO 8601 with a zone, e.g. 2025-11-10T12:00:00Z)`,
    );
  const untilMs = opts.until === undefined ? Date.now() : parseTime(opts.until);
  if (untilMs === undefined) throw new UsageError(`--until: not a time: "${opts.until}"`);
  const tag = `${opts.exchange}-${pair.replace('/', '-')}-${new Date(sinceMs).toISOString().replace(/[:.]/g, '')}`;
  const stateFile = resolve(opts.state ?? join('.data', 'backfill', `${tag}.state.json`));
  const toFile = opts.bus === undefined || opts.output !== undefined;
  const output = resolve(opts.output ?? join('.data', 'backfill', `${tag}.trades.csv`));
  // Before any request: a folder given as --output would otherwise fail only when the first trades arrive.
  if (toFile) checkOutputFile(output);
  checkOutputFile(stateFile, '--state');
  // Two backfills on one state file would interleave their appends to one output: one at a time.
  lockForThisProcess(stateFile, 'the backfill state file');

  const bar = new cliProgress.SingleBar(
    {
      format: `${opts.exchange} ${pair} [{bar}] {percentage}% · {fetched} trades · at {at} · {retries} retries · eta {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(untilMs - sinceMs, 0, {
    fetched: 0,
    at: new Date(sinceMs).toISOString().slice(0, 19),
    retries: 0,
  });
  let source: KrakenRestBackfill;
  try {
    source = new KrakenRestBackfill({
      pair,
      since: sinceMs,
      until: untilMs,
      baseUrl: opts.baseUrl,
      stateFile,
      // Kraken's public budget is about one request a second; tests against a local server lower it.
      minIntervalMs: setting('CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS') ?? 1_000,
      onProgress: (p) =>
        bar.update(Math.max(0, p.cursorTs - sinceMs), {
          fetched: p.fetchedTrades.toLocaleString('en-US'),
          at: new Date(p.cursorTs).toISOString().slice(0, 19),
          retries: p.retries,
        }),
    });
  } catch (err) {
    bar.stop();
    throw catalogued(err, ERR.USAGE);
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());

  if (!toFile && opts.bus !== undefined) {
    const bus = await connectBus(opts.bus);
    const trades = new TradeService(bus);
    try {
      await trades.run([source], abort.signal);
    } finally {
      bar.stop();
      await bus.close();
    }
    const summary = `published ${trades.stats.trades.toLocaleString('en-US')} trades to ${opts.bus} (state: ${stateFile})`;
    if (abort.signal.aborted)
      throw fail(ERR.INTERRUPTED, `interrupted: ${summary}`, {
        hint: 'run the same command again: it resumes from the state file',
      });
    process.stderr.write(`${summary}\n`);
    return;
  }
  const fresh = !existsSync(output);
  const out = createWriteStream(output, { flags: 'a' });
  const writeFailed = (e: Error) => fail(ERR.OUTPUT, `cannot write ${output}: ${e.message}`, { cause: e });
  // A write error (disk full) ends the run through the sink or `finished` below, not as Node's unhandled 'error'.
  out.on('error', () => {});
  if (fresh) out.write('exchange,pair,tradeId,tradeTs,price,qty,side\n');
  let written = 0;
  const sink: SourceSink = {
    trades: async (ts) => {
      if (out.errored) throw writeFailed(out.errored);
      const text =
        ts
          .map((t) => `${t.exchange},${t.pair},${t.tradeId},${t.tradeTs},${t.price},${t.qty},${t.side}`)
          .join('\n') + '\n';
      // Written to the file before the source saves its state past the page: a write that fails (a full disk) must
      // leave the state before it, or the rerun resumes after trades the file never got.
      await new Promise<void>((resolve, reject) =>
        out.write(text, (e) => (e ? reject(writeFailed(e)) : resolve())),
      );
      written += ts.length;
    },
    watermark: () => {},
    reject: (d) => log.warn({ reason: d.reason }, 'rejected row'),
  };
  let writeError: Error | undefined;
  try {
    await source.run(sink, abort.signal);
  } finally {
    bar.stop();
    out.end();
    await finished(out).catch((e: Error) => {
      writeError = e;
    });
  }
  if (writeError) throw writeFailed(writeError);
  const summary = `${written.toLocaleString('en-US')} trades appended to ${output} (state: ${stateFile})`;
  // Interrupted before the range's end: exit 130 like every command with an end (the state file resumes it).
  if (abort.signal.aborted)
    throw fail(ERR.INTERRUPTED, `interrupted: ${summary}`, {
      hint: 'run the same command again: it resumes from the state file',
    });
  process.stderr.write(`done: ${summary}\n`);
}
