/**
 * Benchmark: the two write paths of `DuckDbTable` (src/stores/duckdb-table.ts), side by side at each batch size —
 * the appender into a staging table plus an upsert from it in a transaction, and one `INSERT OR REPLACE` with the rows
 * in a JSON parameter. Rows: the monitor's error records (23 columns), into a DuckDB file with one worker thread (the
 * default). Per write: the main thread's busy time (event-loop utilisation: what the pipeline waits for), the
 * process's CPU (every thread: what competes for the second core) and the wall time; medians of alternating rounds.
 * Usage: ./bench/run duckdb-writes [rounds=5] [rows written per size and round=2000]
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ERRORS_SPEC } from '../src/monitoring/store/rows.ts';
import type { PredictionError } from '../src/schemas/prediction-error.ts';
import { DuckDbTable, JSON_WRITE_MAX_ROWS } from '../src/stores/duckdb-table.ts';
import { scratchDir } from '../test/support/scratch.ts';
import { fmt, recordBenchmark } from './report.ts';

const ROUNDS = Number(process.argv[2] ?? 5);
const ROWS = Number(process.argv[3] ?? 2_000);
const SIZES = [1, 10, 50, 100, 250, 1_000];
const T0 = Date.UTC(2025, 0, 1);

let serial = 0;
function verdict(): PredictionError {
  const i = serial++;
  const close = 60_000 + Math.sin(i) * 500;
  return {
    v: 1,
    status: 'scored',
    exchange: 'binance',
    pair: i % 2 === 0 ? 'BTC/USDT' : 'ETH/USDT',
    windowEnd: T0 + i * 60_000,
    modelName: 'xgboost',
    modelVersion: 3,
    horizonMs: 300_000,
    targetTs: T0 + i * 60_000 + 300_000,
    close,
    predictedClose: close * 1.0001,
    p10: close * 0.998,
    p90: close * 1.002,
    actualClose: close * 1.00005,
    error: close * 0.00005,
    absError: close * 0.00005,
    pctError: 0.005,
    persistenceAbsError: close * 0.00005,
    directionHit: true,
    directionTie: false,
    inBand: true,
    scoredAt: T0 + i * 60_000 + 301_000,
    latenessMs: 1_000,
    reason: null,
  };
}

interface Cost {
  mainMs: number;
  cpuMs: number;
  wallMs: number;
}

/** `ROWS` rows in writes of `size`, through one path; costs per write. */
async function measure(size: number, path: 'appender' | 'json'): Promise<Cost> {
  const file = join(scratchDir('bench-duckdb-writes-'), 'w.duckdb');
  const table = await DuckDbTable.open(ERRORS_SPEC, file, { jsonMaxRows: path === 'json' ? size : 0 });
  const writes = Math.max(1, Math.round(ROWS / size));
  const batches = Array.from({ length: writes }, () => Array.from({ length: size }, verdict));
  await table.write([verdict()]); // the table and its statements warmed up
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (const b of batches) await table.write(b);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(cpu);
  const e = performance.eventLoopUtilization(elu);
  await table.close();
  return { mainMs: e.active / writes, cpuMs: (c.user + c.system) / 1000 / writes, wallMs: wall / writes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
for (const size of SIZES) {
  const got: Record<'appender' | 'json', Cost[]> = { appender: [], json: [] };
  for (let r = 0; r < ROUNDS; r++)
    for (const p of r % 2 === 0 ? (['appender', 'json'] as const) : (['json', 'appender'] as const))
      got[p].push(await measure(size, p));
  const m = (p: 'appender' | 'json', k: keyof Cost) => median(got[p].map((c) => c[k]));
  const cell = (k: keyof Cost) =>
    `${fmt(m('appender', k), 2)} / ${fmt(m('json', k), 2)} (${(m('json', k) / m('appender', k)).toFixed(2)})`;
  const line = `| ${size}${size === JSON_WRITE_MAX_ROWS ? ' (the threshold)' : ''} | ${cell('mainMs')} | ${cell('cpuMs')} | ${cell('wallMs')} |`;
  rows.push(line);
  console.log(
    `${String(size).padStart(5)} rows/write: main thread ${cell('mainMs')} · CPU ${cell('cpuMs')} · wall ${cell('wallMs')} ms (appender / JSON (ratio))`,
  );
}

recordBenchmark(
  'duckdb-writes',
  'DuckDB small writes: appender and staging table, or one statement with the rows as JSON',
  `\`./bench/run duckdb-writes ${ROUNDS} ${ROWS}\` — ${fmt(ROWS)} error records (23 columns) per size and round, into a
DuckDB file (one worker thread); per write, medians of ${ROUNDS} alternating rounds; appender / JSON (ratio).
\`DuckDbTable\` takes the JSON path up to ${JSON_WRITE_MAX_ROWS} rows per write, the appender above.

| rows per write | main thread, ms | CPU (all threads), ms | wall, ms |
|---:|---:|---:|---:|
${rows.join('\n')}`,
);
