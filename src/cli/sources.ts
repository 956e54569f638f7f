import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamConfig } from '../config/config.ts';
import { ERR, fail, UsageError } from '../core/errors.ts';
import { type ReplayProgress, ReplaySource } from '../ingestion/replay.ts';
import type { TradeSource } from '../ingestion/source.ts';

/** Flags shared by the commands that start trade sources. */
export interface SourceFlags {
  source: 'replay' | 'live';
  data?: string;
  speed: string;
}

import { sharedDataDir } from '../data/locations.ts';

export { sharedDataDir };

/**
 * What `--source replay` plays when no `--data` is given: the Binance BTC+ETH websocket capture (11 minutes, both
 * pairs) and Kraken's REST trades of XBT/USDT (7 hours: long enough for the indicators' 61-minute warm-up, so the
 * champion makes predictions). They are 15 months apart; the gap restarts the features' warm-up, as any gap does.
 */
export function defaultReplayFiles(): string[] {
  return [
    join(
      sharedDataDir(),
      'btc-eth-trade-ticks/binance-ws-2024-08-08/binance_spot_ws_trade_btcusdt_ethusdt_2024-08-08T2354_0005.txt.gz',
    ),
    join(
      sharedDataDir(),
      'btc-eth-trade-ticks/kraken-rest-xbtusdt-2025-11-10/public_Trades_XBTUSDT_1000.json',
    ),
  ];
}

export function parseSpeed(text: string): 'max' | number {
  if (text === 'max') return 'max';
  const n = Number(text.replace(/x$/i, ''));
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--speed must be "max" or a positive factor such as 1, 10, 60 (got "${text}")`);
  return n;
}

/** `--data` may name files or folders (every trade file inside, recursively, sorted). */
export function replayFiles(data: string | undefined): string[] {
  if (data === undefined) {
    const files = defaultReplayFiles();
    for (const f of files)
      if (!existsSync(f))
        // Missing input, as a missing --data file is (CC_ERR_INPUT), not a wrong call.
        throw fail(ERR.INPUT, `the default trade recordings are not here (${f})`, {
          hint:
            'without the recordings: ./bin/cryptocast data fetch, then ./bin/cryptocast run --replay 2023-02 ' +
            '(Binance 1-minute klines from the public archive); or go live: ./bin/cryptocast run --source live; ' +
            'or replay trade files of your own: --data PATH (or set CRYPTOCAST_SHARED_DATA to the recordings)',
        });
    return files;
  }
  const out: string[] = [];
  for (const p of data.split(',').map((s) => s.trim())) {
    if (!existsSync(p)) throw fail(ERR.INPUT, `--data: no such file or folder: ${p}`);
    if (statSync(p).isDirectory()) {
      const walk = (dir: string) => {
        for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
          a.name.localeCompare(b.name),
        )) {
          const full = join(dir, e.name);
          if (e.isDirectory()) walk(full);
          else if (/\.(json|csv|txt)(\.gz)?$/i.test(e.name) && !/ohlc/i.test(e.name)) out.push(full);
        }
      };
      walk(p);
    } else out.push(p);
  }
  if (out.length === 0) throw fail(ERR.INPUT, `--data ${data}: no trade files found`);
  return out;
}

export async function buildSources(
  flags: SourceFlags,
  config: StreamConfig,
  onReplayProgress?: (p: ReplayProgress) => void,
  /** A replay plays only these pairs' trades (default: every pair in the files). */
  onlyPairs?: readonly string[],
): Promise<TradeSource[]> {
  if (flags.source === 'replay') {
    return [
      new ReplaySource({
        files: replayFiles(flags.data),
        speed: parseSpeed(flags.speed),
        onProgress: onReplayProgress,
        ...(onlyPairs === undefined ? {} : { pairs: onlyPairs }),
      }),
    ];
  }
  const { liveSources } = await import('../ingestion/live/index.ts');
  return liveSources(config.pairs);
}
