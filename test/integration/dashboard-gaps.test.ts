import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { RunningApi } from '../../src/api/api-service.ts';
import { scorePrediction } from '../../src/monitoring/score.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
import { topics } from '../../src/schemas/topics.ts';
import { waitForDashboard, watch } from '../support/browser.ts';
import { type DashboardFixture, dashboardFixture } from '../support/dashboard-fixture.ts';
import { candle, MIN, prediction, T0 } from '../support/factories.ts';

/**
 * Gaps on the dashboard's charts, in a real browser: minutes with no candle (the pipeline down), no forecast (the
 * predictor down while candles came) or no verdict are drawn as gaps — the line broken, the minutes on the time axis —
 * not as a straight line from the last point before to the first after (the chart library joins consecutive points
 * and puts only the times it is given on its axis: a missing hour took no room at all on the error chart).
 */
const ARTIFACTS = join(
  import.meta.dirname,
  '..',
  '..',
  '.data',
  'test-artifacts',
  `dashboard-gaps-${new Date().toISOString().replace(/[:.]/g, '-')}`,
);
type Series = 'candles' | 'forecast' | 'p10' | 'p90' | 'errors';
type Drawn = { t: number; v: number | null; hidden: boolean }[];
type Page$ = { __cryptocast: { drawn(s: Series): Drawn; onAxis(c: string, t: number[]): boolean[] } };
const drawn = (page: Page, series: Series) =>
  page.evaluate((s) => (globalThis as unknown as Page$).__cryptocast.drawn(s), series);
const onAxis = (page: Page, chart: 'market' | 'errors', times: number[]) =>
  page.evaluate(([c, t]) => (globalThis as unknown as Page$).__cryptocast.onAxis(c, t), [
    chart,
    times,
  ] as const);

/**
 * From `from` to `to` (ms): every minute is on the chart's time axis, the series has a point at each minute but the
 * `missing` ones, and (a line) the segment from a point to the next is drawn exactly when they are a minute apart.
 */
async function assertGaps(
  page: Page,
  series: Series,
  from: number,
  to: number,
  missing: ReadonlySet<number>,
  what: string,
): Promise<void> {
  const minutes: number[] = [];
  for (let t = from; t <= to; t += MIN) minutes.push(t);
  const axis = await onAxis(page, series === 'errors' ? 'errors' : 'market', minutes);
  assert.deepEqual(
    minutes.filter((_, i) => !axis[i]),
    [],
    `${what}: every minute from ${new Date(from).toISOString()} to ${new Date(to).toISOString()} is on the axis`,
  );
  const points = (await drawn(page, series)).filter((p) => p.t >= from && p.t <= to);
  assert.deepEqual(
    points.map((p) => p.t),
    minutes.filter((t) => !missing.has(t)),
    `${what}: a point at each minute but the missing ones`,
  );
  if (series === 'candles') return;
  const joinedAcross = points
    .slice(0, -1)
    .filter((p, i) => !p.hidden !== (points[i + 1]!.t - p.t === MIN))
    .map((p) => new Date(p.t).toISOString());
  assert.deepEqual(joinedAcross, [], `${what}: a line joins two points exactly when they are a minute apart`);
}

describe('dashboard in Chromium: gaps are gaps', () => {
  const bus = new InProcessBus();
  let browser: Browser;
  let api: RunningApi;
  let fixture: DashboardFixture | undefined;
  const N = 180;
  const at = (k: number) => T0 + k * MIN;
  // The pipeline down for 20 minutes (no candles, so no predictions made then either), and the predictor down for
  // 30 minutes while candles came.
  const candleDown = (k: number) => k >= 100 && k < 120;
  const predictorDown = (k: number) => k >= 40 && k < 70;
  const close = (k: number) => 60_000 + 50 * Math.sin(k / 7);
  const candles: Candle[] = [];
  const predictions: Prediction[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    fixture = await dashboardFixture(bus, 'cc-dash-gaps-', async (stores) => {
      for (let k = 1; k <= N; k++)
        if (!candleDown(k)) candles.push(candle({ windowEnd: at(k), close: close(k) }));
      for (let k = 1; k <= N - 5; k++)
        if (!candleDown(k) && !predictorDown(k))
          predictions.push(
            prediction({
              windowEnd: at(k),
              close: close(k),
              predictedReturnBps: 1,
              modelName: 'cryptocast-price',
            }),
          );
      const closes = new Map(candles.map((c) => [c.windowEnd, c.close]));
      const verdicts = predictions
        .filter((p) => closes.has(p.targetTs))
        .map((p) => scorePrediction(p, closes.get(p.targetTs)!, p.targetTs));
      await stores.candles.write(candles);
      await stores.predictions.write(predictions);
      await stores.errors.write(verdicts);
    });
    ({ browser, api } = fixture);
  });
  after(() => fixture?.close());

  it('the first paint: no candle, no forecast, no error where there was none; live records after a gap leave it too', async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const seen = watch(page, `127.0.0.1:${api.port}`);
    await page.goto(`http://127.0.0.1:${api.port}/?pair=BTC-USDT`);
    const live = await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);

    const candleGap = new Set<number>();
    for (let k = 1; k <= N; k++) if (candleDown(k)) candleGap.add(at(k));
    await assertGaps(page, 'candles', at(1), at(N), candleGap, 'candles');
    const targets = new Set(predictions.map((p) => p.targetTs));
    const first = predictions[0]!.targetTs;
    const last = predictions.at(-1)!.targetTs;
    const noForecast = new Set<number>();
    for (let t = first; t <= last; t += MIN) if (!targets.has(t)) noForecast.add(t);
    for (const line of ['forecast', 'p10', 'p90'] as const)
      await assertGaps(page, line, first, last, noForecast, line);
    // A verdict for each forecast whose target minute had a candle.
    const noVerdict = new Set<number>();
    for (let t = first; t <= last; t += MIN)
      if (!targets.has(t) || candleDown((t - T0) / MIN)) noVerdict.add(t);
    await assertGaps(page, 'errors', first, last, noVerdict, 'errors');

    // Live, after the pipeline was down for another 10 minutes: the candle, the forecast and the verdict that come
    // next are drawn after a gap too, not joined to the last ones.
    const k = N + 11;
    const liveCandle = candle({ windowEnd: at(k), close: close(k) });
    const livePrediction = prediction({
      windowEnd: at(k - 5),
      close: close(k - 5),
      predictedReturnBps: 1,
      modelName: 'cryptocast-price',
    });
    await bus.publish(topics.candles, [liveCandle]);
    await bus.publish(topics.predictions, [livePrediction]);
    await bus.publish(topics.predictionErrors, [
      scorePrediction(livePrediction, liveCandle.close, liveCandle.windowEnd),
    ]);
    await waitForDashboard(
      page,
      'the live candle, prediction and verdict',
      (s) =>
        s.live.candles >= live.live.candles + 1 &&
        s.live.predictions >= live.live.predictions + 1 &&
        s.live.errors >= live.live.errors + 1,
      30_000,
    );
    const since = (from: number, to: number) => {
      const out = new Set<number>();
      for (let t = from + MIN; t < to; t += MIN) out.add(t);
      return out;
    };
    await assertGaps(page, 'candles', at(N), at(k), since(at(N), at(k)), 'live candles');
    for (const line of ['forecast', 'p10', 'p90'] as const)
      await assertGaps(page, line, last, at(k), since(last, at(k)), `live ${line}`);
    await assertGaps(page, 'errors', last, at(k), since(last, at(k)), 'live errors');
    await page.screenshot({ path: join(ARTIFACTS, 'gaps.png'), fullPage: true });
    assert.deepEqual(seen.problems, []);
    await page.close();
  });
});
