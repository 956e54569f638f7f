import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type CryptocastError, ERR } from '../../../src/core/errors.ts';
import {
  type Backtest,
  type BacktestProgress,
  backtest,
  checkApplicable,
  linearByDay,
  parseAsPair,
} from '../../../src/training/backtest.ts';
import { type Dataset, DatasetBuilder } from '../../../src/training/dataset.ts';
import type { ModelCard } from '../../../src/training/registry/registry.ts';
import { stumpModel } from '../../support/champion.ts';
import { coded } from '../../support/errors.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2025, 0, 7, 22, 0); // two hours before midnight: the rows span 2025-01-07 … 2025-01-09

/** Columns the card uses: two technical ones; rows every minute for ~2 days of one pair, horizon 5 minutes. */
const COLUMNS = ['ret_60m', 'rv_60m'];
function dataset(pair = 'BTC/USD', minutes = 2 * 1440 + 120): Dataset {
  const b = new DatasetBuilder(COLUMNS, { horizonMs: 5 * MIN });
  for (let i = 0; i < minutes; i++)
    b.add({
      pair,
      windowEnd: T0 + i * MIN,
      close: 100 * Math.exp(0.001 * Math.sin(i / 7) + 0.0004 * Math.sin(i / 2.3)),
      ready: true,
      values: [0.002 * Math.sin(i / 11), 0.004 + 0.001 * Math.cos(i / 50)],
    });
  return b.build();
}

function card(o: Partial<ModelCard> = {}): ModelCard {
  return {
    name: 'm',
    version: 3,
    createdAt: 0,
    codeVersion: 'test',
    horizonMs: 5 * MIN,
    target: 'log_return_bps',
    featureSets: [{ name: 'technical', version: 1 }],
    columns: COLUMNS,
    pairs: ['BTC/USDT', 'ETH/USDT'],
    trainingWindow: { from: Date.UTC(2022, 0, 1), to: Date.UTC(2023, 1, 28) },
    datasetFingerprint: 'sha256:test',
    params: {},
    folds: [],
    summary: {},
    artifacts: ['model.json', 'p10.json', 'p90.json'],
    ...o,
  };
}

// Point model: +1 bps when ret_60m ≥ 0, −1 otherwise; quantiles −8 / +8 bps, p10 and p90 given the wrong way round
// on purpose (the backtest orders them, as the predictor does).
const DOCS = {
  'model.json': stumpModel(2, [{ f: 0, c: 0, a: -1, b: 1 }]),
  'p10.json': stumpModel(2, [{ f: 0, c: 0, a: 8, b: 8 }]),
  'p90.json': stumpModel(2, [{ f: 0, c: 0, a: -8, b: -8 }]),
};

describe('parseAsPair', () => {
  it('maps the single pair of the candles, or each pair of a list', () => {
    assert.deepEqual([...parseAsPair('btc-usdt', ['BTC/USD'])], [['BTC/USD', 'BTC/USDT']]);
    assert.deepEqual(
      [...parseAsPair('BTC/USD=BTC/USDT,eth/usd=ETH/USDT', ['BTC/USD', 'ETH/USD'])],
      [
        ['BTC/USD', 'BTC/USDT'],
        ['ETH/USD', 'ETH/USDT'],
      ],
    );
    assert.equal(parseAsPair(undefined, ['BTC/USD']).size, 0);
  });
  it('refuses a bare pair for candles of several pairs, and malformed entries', () => {
    assert.throws(() => parseAsPair('BTC/USDT', ['BTC/USD', 'ETH/USD']), /map each one/);
    assert.throws(() => parseAsPair('BTC/USD=', ['BTC/USD']), /not PAIR=TRAINED_PAIR/);
    // A pair that is not one: the catalogue's CC_ERR_PAIR, as --pair of every command (it was taken as it was).
    assert.throws(() => parseAsPair('bitcoin', ['BTC/USD']), coded(ERR.PAIR, /--as-pair: not a pair/));
    assert.throws(() => parseAsPair('BTC/USD=x', ['BTC/USD']), coded(ERR.PAIR, /"x"/));
  });
});

describe('checkApplicable', () => {
  const ds = dataset();
  const counts = new Map([['BTC/USD', 2 * 1440 + 120]]);
  it('refuses a pair the model was not trained on, naming the flag that would map it', () => {
    assert.throws(
      () => checkApplicable(ds, card(), new Map(), counts),
      /trained on BTC\/USDT, ETH\/USDT, not on BTC\/USD: .*--as-pair BTC\/USDT/,
    );
    checkApplicable(ds, card(), new Map([['BTC/USD', 'BTC/USDT']]), counts);
    assert.throws(
      () => checkApplicable(ds, card(), new Map([['BTC/USD', 'XRP/USDT']]), counts),
      /not trained on XRP\/USDT/,
    );
  });
  it('refuses another horizon and a card the predictor could not serve', () => {
    assert.throws(
      () => checkApplicable(ds, card({ horizonMs: 15 * MIN }), new Map([['BTC/USD', 'BTC/USDT']]), counts),
      (e: CryptocastError) =>
        /predicts 15 minutes ahead; it cannot be backtested at a 5-minute horizon/.test(e.message) &&
        e.code === 'CC_ERR_MODEL_MISMATCH' &&
        // the catalogue's hint (--as-pair) does not fix a horizon
        /--horizon/.test(e.hint ?? '') &&
        !/--as-pair/.test(e.hint ?? ''),
    );
    assert.throws(
      () => checkApplicable(ds, card({ columns: ['news_x'] }), new Map([['BTC/USD', 'BTC/USDT']]), counts),
      (e: CryptocastError) =>
        /not in the technical feature set/.test(e.message) &&
        e.code === 'CC_ERR_MODEL_MISMATCH' &&
        /technical columns only/.test(e.hint ?? ''),
    );
  });
  it('gives the minimum length when a pair never finished warming up', () => {
    const empty = new DatasetBuilder(COLUMNS, { horizonMs: 5 * MIN }).build();
    assert.throws(
      () => checkApplicable(empty, card(), new Map([['BTC/USD', 'BTC/USDT']]), new Map([['BTC/USD', 40]])),
      /BTC\/USD has 40; a pair needs at least 66 consecutive 1-minute candles \(61 to warm up \+ 5 to the first target\)/,
    );
  });
});

describe('backtest', () => {
  const ds = dataset();
  let bt: Backtest;
  before(async () => {
    bt = await backtest(ds, card(), DOCS);
  });

  it('scores every row, grouped by UTC day, with the model as it is', () => {
    assert.equal(bt.oos.row.length, ds.n);
    assert.deepEqual(
      bt.evaluation.per_day.map((d) => d.day),
      ['2025-01-07', '2025-01-08', '2025-01-09'],
    );
    assert.deepEqual(
      bt.days.map((d) => d.testFrom),
      [Date.UTC(2025, 0, 7), Date.UTC(2025, 0, 8), Date.UTC(2025, 0, 9)],
    );
    assert.equal(bt.evaluation.per_day[0]!.n, 120);
    for (let i = 0; i < ds.n; i++) {
      assert.equal(bt.oos.model[i], ds.X[i * 2]! >= 0 ? 1 : -1);
      assert.equal(bt.oos.p10[i], -8);
      assert.equal(bt.oos.p90[i], 8);
    }
    assert.equal(bt.inTrainingWindow, 0);
    assert.ok(Number.isNaN(bt.oos.champion[0]!));
  });

  it('counts rows inside the model’s training window (not out of sample)', async () => {
    const inside = await backtest(ds, card({ trainingWindow: { from: 0, to: T0 + 10 * MIN } }), DOCS);
    assert.equal(inside.inTrainingWindow, 16); // windowEnd ≤ to + horizon: minutes 0 … 15
  });
});

describe('linearByDay', () => {
  it('is 0 on the first day and, later, learns only from rows whose target time has passed', async () => {
    const ds = dataset();
    const days = [0, 1, 2].map((k) => ({
      fold: k,
      trainFrom: 0,
      trainTo: 0,
      testFrom: Date.UTC(2025, 0, 7) + k * DAY,
      testTo: Date.UTC(2025, 0, 7) + (k + 1) * DAY,
    }));
    const lin = await linearByDay(ds, days);
    for (let i = 0; i < 120; i++) assert.equal(lin[i], 0);
    assert.ok(lin[200] !== 0);
    // Changing the target of the last rows of day 1 whose target lies on day 2 leaves day 2's prediction alone
    // (their targets had not happened at midnight); changing an earlier row's target changes it.
    const cut = Date.UTC(2025, 0, 8) + DAY;
    const late = ds.windowEnd.findIndex((t) => t + ds.horizonMs > cut);
    const probe = ds.windowEnd.findIndex((t) => t >= cut) + 10;
    const y = ds.y.slice();
    ds.y[late] = 1e6;
    assert.equal((await linearByDay(ds, days))[probe], lin[probe]);
    ds.y.set(y);
    ds.y[late - 1] = 1e6;
    assert.notEqual((await linearByDay(ds, days))[probe], lin[probe]);
  });
});

describe('backtest in chunks (the event loop turns between them: a stop signal is heard)', () => {
  // Two pairs, three days, a model whose output depends on both columns: every figure of the report is compared.
  const ds = (() => {
    const b = new DatasetBuilder(COLUMNS, { horizonMs: 5 * MIN });
    for (let i = 0; i < 2 * 1440 + 120; i++)
      for (const [pair, f] of [
        ['BTC/USDT', 1],
        ['ETH/USDT', 1.7],
      ] as const)
        b.add({
          pair,
          windowEnd: T0 + i * MIN,
          close: 100 * f * Math.exp(0.001 * Math.sin(i / (7 * f)) + 0.0004 * Math.sin(i / 2.3)),
          ready: true,
          values: [0.002 * Math.sin(i / (11 * f)), 0.004 + 0.001 * Math.cos(i / 50)],
        });
    return b.build();
  })();
  const docs = {
    'model.json': stumpModel(2, [
      { f: 0, c: 0, a: -1, b: 1 },
      { f: 1, c: 0.004, a: -0.5, b: 0.25 },
    ]),
    'p10.json': stumpModel(2, [{ f: 1, c: 0.0045, a: -6, b: -9 }]),
    'p90.json': stumpModel(2, [{ f: 1, c: 0.0035, a: 7, b: 10 }]),
  };
  const json = (bt: Backtest) =>
    JSON.stringify({ ...bt, oos: Object.fromEntries(Object.entries(bt.oos).map(([k, v]) => [k, [...v]])) });

  it('gives the same figures, to the last digit, whatever the chunk (1 row, 7, 1,000, all at once)', async () => {
    const whole = json(await backtest(ds, card(), docs, { chunkRows: ds.n }));
    for (const chunkRows of [1, 7, 1_000])
      assert.equal(json(await backtest(ds, card(), docs, { chunkRows })), whole);
    // and the default chunk (10,000 rows: one chunk for these 6,000), as the command runs it
    assert.equal(json(await backtest(ds, card(), docs)), whole);
  });

  it('reports its stages as it goes, and stops at the next chunk when its signal is aborted', async () => {
    const seen: BacktestProgress[] = [];
    await backtest(ds, card(), docs, { chunkRows: 1_000, onProgress: (p) => seen.push(p) });
    const model = seen.filter((p) => p.stage === 'model');
    assert.deepEqual(
      model.map((p) => p.done),
      [1_000, 2_000, 3_000, 4_000, 5_000, ds.n], // 5,990 rows: the last 5 minutes of each pair have no target
    );
    assert.deepEqual(
      seen.filter((p) => p.stage === 'linear').map((p) => `${p.done}/${p.total}`),
      ['1/3', '2/3', '3/3'],
    );
    assert.deepEqual(seen.at(-1), { stage: 'evaluation', done: 1, total: 1, detail: 'scoring' });

    const stop = new AbortController();
    let chunks = 0;
    await assert.rejects(
      backtest(ds, card(), docs, {
        chunkRows: 1_000,
        signal: stop.signal,
        onProgress: (p) => {
          if (p.stage === 'model' && ++chunks === 2) stop.abort();
        },
      }),
      { name: 'AbortError' },
    );
    assert.equal(chunks, 2); // not one chunk more
  });
});
