import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CryptocastError, ERR } from '../core/errors.ts';

/**
 * The training dataset: one row per **ready** feature vector, with its target looked up **by timestamp**.
 *
 * - Target: the log return from the close at `windowEnd` to the close at `windowEnd + horizon` of the same pair,
 *   in basis points (×10⁴, so the trees see values of order 1 instead of 10⁻³). The close at the target minute is
 *   found by its time, never by counting rows: a row whose target minute is missing (a gap, the end of the data) is
 *   dropped and counted, never paired with another minute.
 * - Point in time: a row's features are what the feature pipeline knew at `windowEnd` (technical features of the
 *   candles up to it; news signals whose `availableAt` ≤ windowEnd). The builder never looks at later rows to fill
 *   a row's features — only its target.
 * - Rows are ordered by time (then pair), which is what the walk-forward folds cut.
 * - Missing values (null) become NaN, which XGBoost treats as "missing" and learns a default branch for.
 */
export interface FeatureRow {
  pair: string;
  windowEnd: number;
  close: number;
  ready: boolean;
  /** In the order of the builder's `sourceColumns`. */
  values: readonly (number | null)[];
}

export interface Dataset {
  horizonMs: number;
  /** The model's input columns, in order. */
  columns: string[];
  pairs: string[];
  n: number;
  windowEnd: Float64Array;
  /** Index into `pairs`. */
  pair: Int32Array;
  close: Float64Array;
  targetClose: Float64Array;
  /** Log return to the target, in basis points. */
  y: Float64Array;
  /**
   * The drift baseline's prediction (bps): the mean 1-minute log return of the last hour × the horizon in minutes
   * (from `ret_60m`; 0 when the features do not have it).
   */
  drift: Float64Array;
  /**
   * The realised volatility known at the close: `rv_60m` (√Σ of the last 60 squared 1-minute log returns; NaN when
   * the features do not have it). The interval baseline and the volatility deciles read it.
   */
  vol: Float64Array;
  /** n × columns, row-major, float32 (what XGBoost sees), NaN = missing. */
  X: Float32Array;
  dropped: { notReady: number; noTarget: number };
}

/** The target of a row in basis points, and the price it implies for a predicted return. */
export const BPS = 1e4;
export const priceFromReturn = (close: number, bps: number): number => close * Math.exp(bps / BPS);

export class DatasetError extends CryptocastError {
  override readonly name = 'DatasetError';
  constructor(message: string) {
    super(ERR.DATASET.code, message, { exitCode: ERR.DATASET.exitCode });
  }
}

interface PairRows {
  windowEnd: number[];
  close: number[];
  ready: boolean[];
  /** A close read past the dataset's window only as a target (`addTargetOnly`): not a row, not counted as dropped. */
  targetOnly: boolean[];
  values: (readonly (number | null)[])[];
}

export class DatasetBuilder {
  private readonly pairs = new Map<string, PairRows>();
  private readonly pick: number[];
  private readonly ret60: number;
  private readonly rv60: number;
  readonly columns: string[];

  readonly sourceColumns: readonly string[];
  readonly opts: { horizonMs: number; columns?: readonly string[] };

  constructor(sourceColumns: readonly string[], opts: { horizonMs: number; columns?: readonly string[] }) {
    this.sourceColumns = sourceColumns;
    this.opts = opts;
    if (!(Number.isInteger(opts.horizonMs) && opts.horizonMs > 0))
      throw new DatasetError(`horizon must be a positive number of milliseconds, got ${opts.horizonMs}`);
    this.columns = [...(opts.columns ?? sourceColumns)];
    this.pick = this.columns.map((c) => {
      const i = sourceColumns.indexOf(c);
      if (i < 0) throw new DatasetError(`the model needs column "${c}", which the features do not have`);
      return i;
    });
    this.ret60 = sourceColumns.indexOf('ret_60m');
    this.rv60 = sourceColumns.indexOf('rv_60m');
  }

  add(row: FeatureRow): void {
    let p = this.pairs.get(row.pair);
    if (p === undefined) {
      p = { windowEnd: [], close: [], ready: [], targetOnly: [], values: [] };
      this.pairs.set(row.pair, p);
    }
    p.windowEnd.push(row.windowEnd);
    p.close.push(row.close);
    p.ready.push(row.ready);
    p.targetOnly.push(false);
    p.values.push(row.ready ? row.values : []);
  }

  /**
   * A close that is only the target of earlier rows: one read past the end of the dataset's window (up to a horizon
   * after it). It is never a row, and not counted in `dropped` (it was counted as "warming up", which it is not).
   */
  addTargetOnly(pair: string, windowEnd: number, close: number): void {
    this.add({ pair, windowEnd, close, ready: false, values: [] });
    const p = this.pairs.get(pair)!;
    p.targetOnly[p.targetOnly.length - 1] = true;
  }

  build(): Dataset {
    const { horizonMs } = this.opts;
    const pairs = [...this.pairs.keys()].sort();
    type Row = { t: number; p: number; close: number; target: number; values: readonly (number | null)[] };
    const rows: Row[] = [];
    let notReady = 0;
    let noTarget = 0;
    for (const [pi, pair] of pairs.entries()) {
      const p = this.pairs.get(pair)!;
      const closeAt = new Map<number, number>();
      for (let i = 0; i < p.windowEnd.length; i++) {
        if (closeAt.has(p.windowEnd[i]!))
          throw new DatasetError(`${pair} has two rows for ${new Date(p.windowEnd[i]!).toISOString()}`);
        closeAt.set(p.windowEnd[i]!, p.close[i]!);
      }
      for (let i = 0; i < p.windowEnd.length; i++) {
        if (p.targetOnly[i]) continue;
        if (!p.ready[i]) {
          notReady++;
          continue;
        }
        const target = closeAt.get(p.windowEnd[i]! + horizonMs);
        if (target === undefined) {
          noTarget++;
          continue;
        }
        rows.push({ t: p.windowEnd[i]!, p: pi, close: p.close[i]!, target, values: p.values[i]! });
      }
    }
    rows.sort((a, b) => a.t - b.t || a.p - b.p);
    const n = rows.length;
    const k = this.columns.length;
    const ds: Dataset = {
      horizonMs,
      columns: this.columns,
      pairs,
      n,
      windowEnd: new Float64Array(n),
      pair: new Int32Array(n),
      close: new Float64Array(n),
      targetClose: new Float64Array(n),
      y: new Float64Array(n),
      drift: new Float64Array(n),
      vol: new Float64Array(n),
      X: new Float32Array(n * k),
      dropped: { notReady, noTarget },
    };
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      ds.windowEnd[i] = r.t;
      ds.pair[i] = r.p;
      ds.close[i] = r.close;
      ds.targetClose[i] = r.target;
      ds.y[i] = Math.log(r.target / r.close) * BPS;
      const recent = this.ret60 < 0 ? null : r.values[this.ret60];
      ds.drift[i] = typeof recent === 'number' ? ((recent * BPS) / 60) * (horizonMs / 60_000) : 0;
      const rv = this.rv60 < 0 ? null : r.values[this.rv60];
      ds.vol[i] = typeof rv === 'number' ? rv : Number.NaN;
      for (let j = 0; j < k; j++) {
        const v = r.values[this.pick[j]!];
        ds.X[i * k + j] = v === null || v === undefined || !Number.isFinite(v) ? Number.NaN : v;
      }
    }
    return ds;
  }
}

/**
 * Refuses datasets a model cannot honestly learn from: too few rows, constant prices. Returns the warnings that do
 * not stop training: columns missing in every row (the trees ignore them) or in most rows.
 */
export function checkDataset(ds: Dataset, minRows: number): string[] {
  if (ds.n < minRows)
    throw new DatasetError(
      `only ${ds.n} usable rows (need at least ${minRows}); ${ds.dropped.notReady} rows were still warming up and ${ds.dropped.noTarget} had no close at windowEnd + horizon`,
    );
  let moving = false;
  for (let i = 0; i < ds.n && !moving; i++) moving = ds.y[i] !== 0;
  if (!moving)
    throw new DatasetError(
      'the price never changes over the horizon in this data: there is nothing to predict',
    );
  const warnings: string[] = [];
  const k = ds.columns.length;
  for (let j = 0; j < k; j++) {
    let missing = 0;
    for (let i = 0; i < ds.n; i++) if (Number.isNaN(ds.X[i * k + j]!)) missing++;
    if (missing === ds.n)
      warnings.push(`column ${ds.columns[j]} is missing in every row (the trees will ignore it)`);
    else if (missing > ds.n / 2)
      warnings.push(`column ${ds.columns[j]} is missing in ${((100 * missing) / ds.n).toFixed(0)}% of rows`);
  }
  return warnings;
}

/** A stable fingerprint of the dataset's content (columns, times, pairs, prices and features). */
export function fingerprint(ds: Dataset): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ columns: ds.columns, pairs: ds.pairs, horizonMs: ds.horizonMs }));
  for (const a of [ds.windowEnd, ds.pair, ds.close, ds.targetClose, ds.drift, ds.X])
    h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return `sha256:${h.digest('hex')}`;
}

/**
 * Writes the dataset for the Python trainer: `dataset.json` (columns, pairs, n, horizon, files), `X.f32`
 * (n × columns float32, row-major), `meta.f64` (n × 4 float64: windowEnd, pair index, close, target bps) and
 * `vol.f64` (n float64: rv_60m at the close, NaN when unknown),
 * little-endian raw arrays that numpy maps without parsing.
 */
export async function writeDataset(ds: Dataset, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const meta = new Float64Array(ds.n * 4);
  for (let i = 0; i < ds.n; i++) {
    meta[i * 4] = ds.windowEnd[i]!;
    meta[i * 4 + 1] = ds.pair[i]!;
    meta[i * 4 + 2] = ds.close[i]!;
    meta[i * 4 + 3] = ds.y[i]!;
  }
  await writeFile(join(dir, 'X.f32'), new Uint8Array(ds.X.buffer, ds.X.byteOffset, ds.X.byteLength));
  await writeFile(join(dir, 'meta.f64'), new Uint8Array(meta.buffer));
  await writeFile(join(dir, 'vol.f64'), new Uint8Array(ds.vol.buffer, ds.vol.byteOffset, ds.vol.byteLength));
  await writeFile(
    join(dir, 'dataset.json'),
    JSON.stringify({
      columns: ds.columns,
      pairs: ds.pairs,
      n: ds.n,
      horizonMs: ds.horizonMs,
      X: 'X.f32',
      meta: 'meta.f64',
      vol: 'vol.f64',
      metaColumns: ['windowEnd', 'pair', 'close', 'y_bps'],
    }),
  );
}

/**
 * Reads a dataset folder written by `writeDataset` back (the study and benchmark scripts cache the 14-month dataset
 * this way instead of recomputing a million feature vectors each run). The target close is close · exp(y / 10⁴)
 * (equal to the original to ~1e-15 relative); drift and vol come from the `ret_60m` and `rv_60m` columns when the
 * dataset has them (vol from vol.f64 when present).
 */
export async function readDataset(dir: string): Promise<Dataset> {
  const info = JSON.parse(await readFile(join(dir, 'dataset.json'), 'utf8')) as {
    columns: string[];
    pairs: string[];
    n: number;
    horizonMs: number;
    X: string;
    meta: string;
    vol?: string;
  };
  const f64 = async (name: string) => {
    const b = await readFile(join(dir, name));
    return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  const xb = await readFile(join(dir, info.X));
  const X = new Float32Array(xb.buffer.slice(xb.byteOffset, xb.byteOffset + xb.byteLength));
  const meta = await f64(info.meta);
  const { n, columns, horizonMs } = info;
  const k = columns.length;
  if (X.length !== n * k || meta.length !== n * 4)
    throw new DatasetError(`${dir}: files do not match dataset.json`);
  const ret60 = columns.indexOf('ret_60m');
  const rv60 = columns.indexOf('rv_60m');
  const vol = info.vol ? await f64(info.vol).catch(() => undefined) : undefined;
  const ds: Dataset = {
    horizonMs,
    columns,
    pairs: info.pairs,
    n,
    windowEnd: new Float64Array(n),
    pair: new Int32Array(n),
    close: new Float64Array(n),
    targetClose: new Float64Array(n),
    y: new Float64Array(n),
    drift: new Float64Array(n),
    vol: vol ?? new Float64Array(n),
    X,
    dropped: { notReady: 0, noTarget: 0 },
  };
  for (let i = 0; i < n; i++) {
    ds.windowEnd[i] = meta[i * 4]!;
    ds.pair[i] = meta[i * 4 + 1]!;
    ds.close[i] = meta[i * 4 + 2]!;
    ds.y[i] = meta[i * 4 + 3]!;
    ds.targetClose[i] = priceFromReturn(ds.close[i]!, ds.y[i]!);
    const r = ret60 < 0 ? Number.NaN : X[i * k + ret60]!;
    ds.drift[i] = Number.isNaN(r) ? 0 : ((r * BPS) / 60) * (horizonMs / 60_000);
    if (vol === undefined) ds.vol[i] = rv60 < 0 ? Number.NaN : X[i * k + rv60]!;
  }
  return ds;
}
