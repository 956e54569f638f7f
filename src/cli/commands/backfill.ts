import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { setting } from '../../config/env.ts';
import { catalogued, ERR, fail, UsageError } from '../../core/errors.ts';
import { checkOutputFile, lockForThisProcess } from '../../core/files.ts';
import { log } from '../../core/log.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { KrakenRestBackfill } from '../../ingestion/backfill/kraken-rest.ts';
import { loadState } from '../../ingestion/backfill/state-file.ts';
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
  if (toFile) await checkOutputMatchesState(output, stateFile, { pair, since: sinceMs });

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
  // SIGTERM as well as SIGINT (`kill`, a container's stop): it killed the process between a page's write and its state.
  const stopListening = onStopSignal(() => abort.abort());

  if (!toFile && opts.bus !== undefined) {
    const bus = await connectBus(opts.bus);
    const trades = new TradeService(bus);
    try {
      await trades.run([source], abort.signal);
    } finally {
      stopListening();
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
  // An empty file (`touch`ed, or left by a run stopped before its first page) is a fresh one: it gets the header.
  const fresh = outputSize(output) === 0;
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
    stopListening();
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

/** Bytes in `path`; 0 when it does not exist. */
function outputSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The state file says how many trades its output holds (the output is appended to, the state says where the next
 * page starts): a rerun goes on only when the output holds exactly that many. Apart, the rerun trusted the one it had:
 * a state removed "to start over" with its output kept appended the whole range a second time; an output removed (or
 * another --output named) with the state kept got only the trades after the state's cursor, and the run said "done".
 */
async function checkOutputMatchesState(
  output: string,
  stateFile: string,
  run: { pair: string; since: number },
): Promise<void> {
  const saved = loadState(stateFile);
  // Another backfill's state: the source refuses it, saying so (its counts mean nothing for this output).
  if (saved !== undefined && (saved.pair !== run.pair || saved.since !== run.since)) return;
  const held = await tradesInOutput(output);
  // Not a regular file (/dev/null, a pipe): nothing to count, nothing it could double.
  if (held === undefined) return;
  if (held.partialLine)
    throw fail(
      ERR.OUTPUT,
      `${output} ends in a partial line (a write cut short): appending to it would join two trades into one row`,
      { hint: `remove its last line, or move ${output} and ${stateFile} away to start over` },
    );
  if (saved === undefined) {
    if (held.trades > 0)
      throw fail(
        ERR.OUTPUT,
        `${output} already holds ${held.trades} trades and there is no state file ${stateFile} saying how far they go: this run would append the range to them again`,
        { hint: `give the --state it was written with, or move ${output} away to start over` },
      );
    return;
  }
  if (held.trades !== saved.fetchedTrades)
    throw fail(
      ERR.STATE_FILE,
      `state file ${stateFile} records ${saved.fetchedTrades} trades written, but ${output} holds ${held.trades}: resuming would leave the output ${held.trades < saved.fetchedTrades ? "without the trades before the state's cursor" : 'with trades twice'}`,
      {
        hint: `give the --output it was written with, or remove ${stateFile} (and the output) to start over`,
      },
    );
}

/** Data rows of a trades CSV (lines after its header), and whether its last line is unfinished; undefined: not a regular file. */
async function tradesInOutput(output: string): Promise<{ trades: number; partialLine: boolean } | undefined> {
  let size: number;
  try {
    const stat = statSync(output);
    if (!stat.isFile()) return undefined;
    size = stat.size;
  } catch {
    return { trades: 0, partialLine: false }; // not there yet
  }
  if (size === 0) return { trades: 0, partialLine: false };
  let newlines = 0;
  let last = 0;
  for await (const chunk of createReadStream(output) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1]!;
  }
  return { trades: Math.max(0, newlines - 1), partialLine: last !== 10 };
}
