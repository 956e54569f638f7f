import { existsSync } from 'node:fs';
import { n } from '../../app/progress.ts';
import { CandleAggregator } from '../../candles/aggregator.ts';
import { CandleCsvWriter } from '../../candles/csv.ts';
import { loadStreamSetting, parseDuration } from '../../config/config.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { checkOutputFile, refuseOverwritingInput } from '../../core/files.ts';
import { onStopSignal, untilAborted } from '../../core/stop-signals.ts';
import { TradeDeduplicator } from '../../ingestion/dedup.ts';
import { readTradeFile, TRADE_FILE_FORMATS, type TradeFileFormat } from '../../ingestion/files/readers.ts';
import { TradePlausibility } from '../../ingestion/trade-plausibility.ts';
import type { Candle, Interval } from '../../schemas/candle.ts';

/**
 * `cryptocast candles`: a trades file → candle CSV, with exactly the window code of the live service
 * (same aggregator, same late policy), the file's end acting as the final watermark.
 */
export async function candles(opts: {
  input: string;
  format: string;
  interval: Interval;
  pair?: string;
  grace: string;
  output: string;
  maxPriceFactor?: string;
}): Promise<void> {
  if (!existsSync(opts.input)) throw fail(ERR.INPUT, `input file not found: ${opts.input}`);
  if (opts.format !== 'auto' && !TRADE_FILE_FORMATS.includes(opts.format as TradeFileFormat)) {
    throw new UsageError(`unknown --format "${opts.format}": use auto or ${TRADE_FILE_FORMATS.join(', ')}`);
  }
  refuseOverwritingInput(opts.output, [opts.input]);
  checkOutputFile(opts.output);
  const graceMs = parseDuration(opts.grace, '--grace');
  // Validated as `run` validates it (a factor ≤ 1 would reject every trade; `abc` would reject none).
  const maxFactor = loadStreamSetting('maxPriceFactor', opts.maxPriceFactor);
  const out: Candle[] = [];
  let late = 0;
  const agg = new CandleAggregator(
    {
      candle: (c) => out.push(c),
      late: () => {
        late++;
      },
    },
    { interval: opts.interval, graceMs },
  );
  const dedup = new TradeDeduplicator();
  // The same plausibility guard as the trades service: an absurd price never reaches a candle.
  const plausibility = new TradePlausibility({ maxFactor });
  let trades = 0;
  let rejects = 0;
  const writer = new CandleCsvWriter(opts.output);
  // A stop removes the temporary output (it stayed beside the output, hidden, for good) and ends with exit 130.
  const abort = new AbortController();
  const stopListening = onStopSignal(() => abort.abort());
  try {
    const batches = readTradeFile(opts.input, { format: opts.format as TradeFileFormat, pair: opts.pair });
    for await (const batch of untilAborted(batches, abort.signal, interrupted)) {
      for (const r of batch.rejects) {
        rejects++;
        if (rejects <= 10) process.stderr.write(`rejected line ${r.line}: ${r.reason}\n`);
      }
      for (const t of dedup.filter(batch.trades)) {
        const why = plausibility.why(t);
        if (why !== undefined) {
          rejects++;
          if (rejects <= 10) process.stderr.write(`rejected trade ${t.tradeId}: ${why}\n`);
          continue;
        }
        trades++;
        agg.onTrade(t);
      }
      await writer.write(out.splice(0));
    }
    // Refused before the output is committed: a failed command leaves no file (it left a header-only one).
    if (trades === 0) throw noTrades(opts.input, rejects);
    agg.flush();
    await writer.write(out.splice(0));
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    stopListening();
  }
  process.stderr.write(
    `${n(trades)} trades → ${n(writer.rows)} candles (${opts.interval}) in ${opts.output}` +
      `${dedup.duplicates ? `; ${n(dedup.duplicates)} duplicate trades dropped` : ''}` +
      `${late ? `; ${n(late)} late trades (after ${opts.grace} grace) not counted` : ''}` +
      `${rejects ? `; ${n(rejects)} rows rejected` : ''}\n`,
  );
}

function noTrades(input: string, rejects: number): Error {
  return fail(
    ERR.INPUT,
    `no trades in ${input}${rejects ? ` (all ${n(rejects)} rows rejected: the first reasons are above)` : ''}`,
  );
}

/** Stopped by SIGINT/SIGTERM: nothing is written, a previous output stays as it was. */
function interrupted(): Error {
  return fail(ERR.INTERRUPTED, 'interrupted: no output written (a previous one is left as it was)');
}
