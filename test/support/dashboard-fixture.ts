import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { type RunningApi, startApi } from '../../src/api/api-service.ts';
import { type CandlesTable, openCandlesTable } from '../../src/candles/store/candles-table.ts';
import type { PredictionsStore } from '../../src/inference/predictions-store.ts';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import type { Bus } from '../../src/runtime/bus.ts';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { launchChromium } from './browser.ts';
import { stumpChampionRegistry } from './monitoring.ts';
import { scratchDir } from './scratch.ts';

/** The three stores the dashboard reads, in one DuckDB file of a scratch folder. */
export interface DashboardStores {
  predictions: PredictionsStore;
  errors: ErrorsStore;
  candles: CandlesTable;
}

/**
 * What a dashboard test in Chromium stands on: the stores (filled by the test with `fill` before the API starts), the
 * API on a free port serving BTC/USDT with a stump champion, and a browser. `close` ends them all.
 */
export interface DashboardFixture {
  stores: DashboardStores;
  api: RunningApi;
  browser: Browser;
  close(): Promise<void>;
}

export async function dashboardFixture(
  bus: Bus,
  scratchPrefix: string,
  fill: (stores: DashboardStores) => Promise<void> = async () => {},
): Promise<DashboardFixture> {
  const env = await stumpChampionRegistry();
  const file = join(scratchDir(scratchPrefix), 'cryptocast.duckdb');
  const stores: DashboardStores = {
    predictions: await openPredictionsStore(`duckdb:${file}`),
    errors: await openErrorsStore(`duckdb:${file}`),
    candles: await openCandlesTable(`duckdb:${file}`),
  };
  await fill(stores);
  const api = await startApi({
    bus,
    store: stores.predictions,
    errorsStore: stores.errors,
    candlesTable: stores.candles,
    pairs: ['BTC/USDT'],
    registry: new LocalRegistry(env.CRYPTOCAST_REGISTRY!),
    modelName: 'cryptocast-price',
    port: 0,
    host: '127.0.0.1',
    qualityClock: 'event',
  });
  const browser = await launchChromium();
  return {
    stores,
    api,
    browser,
    async close() {
      await browser.close();
      await api.close();
      await stores.predictions.close();
      await stores.errors.close();
      await stores.candles.close();
    },
  };
}
