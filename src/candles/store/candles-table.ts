import type { Candle } from '../../schemas/candle.ts';
import { type OpenTableOptions, openTable } from '../../stores/open.ts';
import type { Column, Table, TableSpec } from '../../stores/table.ts';

/**
 * The candles a dashboard draws: the monitor keeps every candle it reads (upsert on pair, window_end: a revision
 * replaces its minute), in the same store as the predictions and their error records. Read by `/v1/candles`, and by
 * `cryptocast run --source live` restarted on its store: where it resumes, and under `--late revise` the minutes it
 * takes back for revisions (`revisable`, kept in the four `revisable_*` columns).
 */
const col = (
  name: string,
  type: Column<Candle>['type'],
  get: Column<Candle>['get'],
  nullable = false,
  added = false,
): Column<Candle> => ({
  name,
  type,
  get,
  nullable,
  ...(added ? { added } : {}),
});

/** A column added after stores were made without it: NULL there, and in candles that do not carry `revisable`. */
const revisableCol = (name: string, type: Column<Candle>['type'], get: Column<Candle>['get']) =>
  col(name, type, get, true, true);

export const CANDLES_SPEC: TableSpec<Candle> = {
  name: 'candles_v1',
  key: ['pair', 'window_end'],
  columns: [
    col('pair', 'text', (c) => c.pair),
    col('window_end', 'bigint', (c) => c.windowEnd),
    col('window_start', 'bigint', (c) => c.windowStart),
    col('exchange', 'text', (c) => c.exchange),
    col('interval', 'text', (c) => c.interval),
    col('open', 'double', (c) => c.open),
    col('high', 'double', (c) => c.high),
    col('low', 'double', (c) => c.low),
    col('close', 'double', (c) => c.close),
    col('volume', 'double', (c) => c.volume),
    col('trades', 'bigint', (c) => c.trades ?? null, true),
    col('vwap', 'double', (c) => c.vwap ?? null, true),
    col('filled', 'boolean', (c) => c.filled),
    col('revision', 'bigint', (c) => c.revision),
    // What a restarted `run` needs to revise the minute (`Candle.revisable`): null when the candle has none.
    revisableCol('revisable_open_ts', 'bigint', (c) => c.revisable?.openTs ?? null),
    revisableCol('revisable_close_ts', 'bigint', (c) => c.revisable?.closeTs ?? null),
    revisableCol('revisable_volume', 'double', (c) => c.revisable?.volume ?? null),
    revisableCol('revisable_quote_volume', 'double', (c) => c.revisable?.quoteVolume ?? null),
    // The ids of the minute's trades of its last second (`Candle.closingTradeIds`, a JSON array): what a restarted
    // `run` knows the refill's overlap by. Null when the candle has none (added later, as the revisable_* columns).
    col(
      'closing_trade_ids',
      'text',
      (c) => (c.closingTradeIds === undefined ? null : JSON.stringify(c.closingTradeIds)),
      true,
      true,
    ),
    // Where the pair's trades stood when the candle was emitted (`Candle.refillFrom`, a JSON object): where a restarted
    // `run` refills from. Null when the candle has none (added later, as the columns above).
    col(
      'refill_from',
      'text',
      (c) => (c.refillFrom === undefined ? null : JSON.stringify(c.refillFrom)),
      true,
      true,
    ),
  ],
  fromRow: (r) =>
    ({
      v: 1,
      exchange: String(r.exchange),
      pair: String(r.pair),
      interval: String(r.interval),
      windowStart: Number(r.window_start),
      windowEnd: Number(r.window_end),
      open: Number(r.open),
      high: Number(r.high),
      low: Number(r.low),
      close: Number(r.close),
      volume: Number(r.volume),
      ...(r.trades === null || r.trades === undefined ? {} : { trades: Number(r.trades) }),
      ...(r.vwap === null || r.vwap === undefined ? {} : { vwap: Number(r.vwap) }),
      filled: Boolean(r.filled),
      revision: Number(r.revision),
      ...(r.revisable_open_ts === null || r.revisable_open_ts === undefined
        ? {}
        : {
            revisable: {
              openTs: Number(r.revisable_open_ts),
              closeTs: Number(r.revisable_close_ts),
              volume: Number(r.revisable_volume),
              quoteVolume: Number(r.revisable_quote_volume),
            },
          }),
      ...(r.closing_trade_ids === null || r.closing_trade_ids === undefined
        ? {}
        : { closingTradeIds: JSON.parse(String(r.closing_trade_ids)) as string[] }),
      ...(r.refill_from === null || r.refill_from === undefined
        ? {}
        : { refillFrom: JSON.parse(String(r.refill_from)) as Candle['refillFrom'] }),
    }) as Candle,
};

export type CandlesTable = Table<Candle>;

export const openCandlesTable = (url: string, o?: OpenTableOptions): Promise<CandlesTable> =>
  openTable(CANDLES_SPEC, url, o);

/**
 * Each minute's first emission (revision 0), beside `candles_v1` where a revision replaces it: under `--late-policy
 * revise` the feature stage takes first emissions only, so `cryptocast run` restarted on its store seeds it from these
 * (`resumeWarmupCandles`) to give the vectors of a run that never stopped. Written by the monitor under `revise` only
 * (`candleCopies`): under `dlq` every stored candle is its minute's first emission.
 */
export const CANDLE_FIRST_EMISSIONS_SPEC: TableSpec<Candle> = {
  ...CANDLES_SPEC,
  name: 'candle_first_emissions_v1',
};

export const openCandleFirstEmissionsTable = (url: string, o?: OpenTableOptions): Promise<CandlesTable> =>
  openTable(CANDLE_FIRST_EMISSIONS_SPEC, url, o);

/**
 * How the monitor stores the candles it reads: every one in `candles` (a revision replaces its minute), and the first
 * emissions in `firstEmissions` too when given. Both writes are upserts: a batch written again after a failure is
 * harmless.
 */
export function candleCopies(
  candles: CandlesTable,
  firstEmissions?: CandlesTable,
): { write(values: readonly Candle[]): Promise<void> } {
  return {
    async write(values) {
      await candles.write(values);
      if (firstEmissions === undefined) return;
      const first = values.filter((c) => c.revision === 0);
      if (first.length > 0) await firstEmissions.write(first);
    },
  };
}
