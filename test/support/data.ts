import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The shared recordings, beside the repository root (`../shared/data`), or `CRYPTOCAST_SHARED_DATA`. */
export const SHARED_DATA = resolve(
  process.env.CRYPTOCAST_SHARED_DATA ?? join(import.meta.dirname, '..', '..', '..', 'shared', 'data'),
);

if (!existsSync(SHARED_DATA))
  throw new Error(`shared data not found at ${SHARED_DATA} (set CRYPTOCAST_SHARED_DATA)`);

export const BINANCE_CAPTURE = join(
  SHARED_DATA,
  'btc-eth-trade-ticks/binance-ws-2024-08-08/binance_spot_ws_trade_btcusdt_ethusdt_2024-08-08T2354_0005.txt.gz',
);
export const KRAKEN_REST_TRADES = join(
  SHARED_DATA,
  'btc-eth-trade-ticks/kraken-rest-xbtusdt-2025-11-10/public_Trades_XBTUSDT_1000.json',
);
export const KRAKEN_2019_CSV = join(
  SHARED_DATA,
  'btc-eth-trade-ticks/kraken-btcusd-2019-07-01/kraken_btcusd_trades_2019-07-01T00.csv',
);
