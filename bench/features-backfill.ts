/**
 * Benchmark (issue 3): 12 months of 1-minute candles for one pair (Binance BTCUSDT, 2022, 525,600 candles) →
 * features → feature store, on DuckDB (target < 10 s) and on PostgreSQL (target < 30 s), side by side in one run;
 * and the per-candle cost of the live path, all features together (target < 20 µs per candle per pair).
 * Usage: ./bench/run features-backfill   (PostgreSQL from scripts/postgres.sh, or CRYPTOCAST_BENCH_PG=URL)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { candleFiles, readOhlcv } from '../src/candles/ohlcv-files.ts';
import { backfillFeatures } from '../src/features/backfill.ts';
import { TECHNICAL_SET } from '../src/features/feature-writer.ts';
import { openFeatureStore } from '../src/features/store/open.ts';
import type { FeatureStore } from '../src/features/store/store.ts';
import { type CandleInput, TechnicalFeatures } from '../src/features/technical.ts';
import { fmt, recordBenchmark } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(
  ROOT,
  '..',
  'shared',
  'data',
  'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02',
  'BTCUSDT',
);
const dir = mkdtempSync(join(tmpdir(), 'bench-12m-'));
for (const f of readdirSync(SRC).filter((f) => /-2022-\d\d-\d\d\.zip$/.test(f)))
  symlinkSync(join(SRC, f), join(dir, f));

/** The whole backfill path as `cryptocast features --store` runs it (src/features/backfill.ts). */
async function backfill(store: FeatureStore): Promise<{ seconds: number; rows: number }> {
  const t0 = performance.now();
  await store.migrate(TECHNICAL_SET);
  const stats = await backfillFeatures({ files: candleFiles(dir), store, exchange: 'binance' });
  return { seconds: (performance.now() - t0) / 1000, rows: stats.rows };
}

/** Per-candle cost of the live path: one `TechnicalFeatures.update` per candle, timed over the same minutes. */
async function liveCost(): Promise<number> {
  const candles: CandleInput[] = [];
  for await (const b of readOhlcv(dir)) candles.push(...b.candles);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 3; r++) {
    const engine = new TechnicalFeatures();
    const t0 = performance.now();
    for (const c of candles) engine.update(c);
    best = Math.min(best, ((performance.now() - t0) * 1000) / candles.length);
  }
  return best;
}

const duckFile = join(ROOT, '.data', 'bench', 'features.duckdb');
mkdirSync(join(ROOT, '.data', 'bench'), { recursive: true });
rmSync(duckFile, { force: true });
const pgUrl =
  process.env.CRYPTOCAST_BENCH_PG ??
  execFileSync('bash', [join(ROOT, 'scripts', 'postgres.sh'), 'url'])
    .toString()
    .trim();
if (!process.env.CRYPTOCAST_BENCH_PG)
  execFileSync('bash', [join(ROOT, 'scripts', 'postgres.sh'), 'start'], { stdio: 'inherit' });

const results: { name: string; r: Awaited<ReturnType<typeof backfill>>; again: number; target: number }[] =
  [];
for (const [name, url, target] of [
  ['DuckDB (one file)', `duckdb:${duckFile}`, 10],
  ['PostgreSQL 15 (local server)', pgUrl, 30],
] as const) {
  const store = await openFeatureStore(url);
  if (store.kind === 'postgres') {
    // Start from an empty table so both backends do the same work.
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: url });
    await c.connect();
    await c.query('DROP TABLE IF EXISTS fs_technical_v1, fs_technical_v1_online');
    await c.end();
  }
  const r = await backfill(store);
  const t1 = performance.now();
  const again = await backfill(store); // idempotent re-run over the same candles
  const count = await store.count(TECHNICAL_SET);
  if (count !== r.rows) throw new Error(`${name}: ${count} rows stored after two runs, expected ${r.rows}`);
  void t1;
  await store.close();
  results.push({ name, r, again: again.seconds, target });
  process.stdout.write(
    `${name}: ${fmt(r.rows)} rows in ${r.seconds.toFixed(1)} s (re-run ${again.seconds.toFixed(1)} s)\n`,
  );
}
const us = await liveCost();
process.stdout.write(`live path: ${us.toFixed(2)} µs per candle\n`);
rmSync(dir, { recursive: true, force: true });

const body = `
12 months of Binance BTCUSDT 1-minute candles (2022, ${fmt(results[0]!.r.rows)} candles, 365 daily zips) → technical features
(${TECHNICAL_SET.columns.length} columns) → feature store, as \`cryptocast features --store\` does it (src/features/backfill.ts: column batches as the store asks, DuckDB one row group written while the next is computed, PostgreSQL up to 2^20 rows).

| backend | first run | re-run (idempotent, same rows) | target |
|---|---|---|---|
${results
  .map(
    (x) =>
      `| ${x.name} | ${x.r.seconds.toFixed(1)} s | ${x.again.toFixed(1)} s | < ${x.target} s (${(x.r.seconds / x.target).toFixed(2)}× of it) |`,
  )
  .join('\n')}

Live path, all features together: **${us.toFixed(2)} µs per candle per pair** (best of 3 over the same ${fmt(results[0]!.r.rows)} minutes; target < 20 µs).
Writing: DuckDB scans the column batch (a table function) into the table, or into a staging table then
\`INSERT OR REPLACE\` when rows already exist; PostgreSQL gets a binary \`COPY\`, into a temporary table then
\`INSERT … ON CONFLICT DO UPDATE\` when rows already exist. Compared with pandas + TA-Lib: \`./bench/run peers\`.
`;
process.stdout.write(body);
recordBenchmark(
  'features-backfill',
  'Features backfill into the feature store, and the live per-candle cost',
  body,
);
