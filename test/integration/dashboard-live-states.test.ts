import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import type { RunningApi } from '../../src/api/api-service.ts';
import { scorePrediction } from '../../src/monitoring/score.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
import { topics } from '../../src/schemas/topics.ts';
import { waitForDashboard, watch } from '../support/browser.ts';
import {
  type DashboardFixture,
  type DashboardStores,
  dashboardFixture,
} from '../support/dashboard-fixture.ts';
import { candle, MIN, prediction, T0 } from '../support/factories.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The dashboard in Chromium while the system it shows is still coming up and going on: a page opened before the first
 * prediction (a live run warms up for 61 minutes) loads the pair once its predictions come, without a reload; and a
 * candle published again with late trades (`--late-policy revise`) is drawn as revised, as the store keeps it.
 */
type Drawn = { t: number; v: number | null; hidden: boolean }[];
type Page$ = { __cryptocast: { drawn(s: 'candles'): Drawn } };
const drawnCandles = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as Page$).__cryptocast.drawn('candles'));

describe('dashboard in Chromium: a system warming up, and candles revised live', () => {
  const bus = new InProcessBus();
  let browser: Browser;
  let api: RunningApi;
  let stores: DashboardStores;
  let fixture: DashboardFixture | undefined;
  const at = (k: number) => T0 + k * MIN;
  const candles: Candle[] = [];
  const predictions: Prediction[] = [];
  for (let k = 1; k <= 30; k++) candles.push(candle({ windowEnd: at(k), close: 60_000 + k }));
  for (let k = 1; k <= 25; k++)
    predictions.push(prediction({ windowEnd: at(k), close: 60_000 + k, modelName: 'cryptocast-price' }));

  before(async () => {
    fixture = await dashboardFixture(bus, 'cc-dash-states-', async (_stores) => {
      // Nothing yet: the pipeline has started, its indicators are warming up.
    });
    ({ browser, api, stores } = fixture);
  });
  after(() => fixture?.close());

  it('opened before the first prediction: says it waits for them, then loads the pair when they come (no reload)', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${api.port}`);
    await page.goto(`http://127.0.0.1:${api.port}/`);
    const msg = await page.waitForSelector('[data-state="no-data"]', { timeout: 30_000 });
    assert.match((await msg.textContent()) ?? '', /No predictions yet/);
    assert.match((await msg.textContent()) ?? '', /train one first \(bash scripts\/price-model\.sh\)/);

    // The warm-up is over: the pipeline stores and publishes its first candles and predictions.
    await stores.candles.write(candles);
    await stores.predictions.write(predictions);
    await bus.publish(topics.candles, candles);
    await bus.publish(topics.predictions, predictions);
    // Each scored when its minute came (all have a candle): /v1/quality answers.
    const closes = new Map(candles.map((c) => [c.windowEnd, c.close]));
    const verdicts = predictions.map((p) => scorePrediction(p, closes.get(p.targetTs)!, p.targetTs));
    await stores.errors.write(verdicts);
    await bus.publish(topics.predictionErrors, verdicts);
    const s = await waitForDashboard(
      page,
      'the pair loaded once it has predictions',
      (s) => s.status === 'live' && s.predictions === predictions.length,
      40_000,
    );
    assert.equal(s.pair, 'BTC-USDT');
    assert.equal(s.candles, candles.length);
    assert.equal(await page.$('[data-state="no-data"]'), null, 'the "no predictions yet" notice is gone');
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('a pair with candles and no prediction yet (warming up): said so, not "no data"; drawn once it has predictions', async () => {
    const eth = (k: number) => ({ pair: 'ETH/USDT', windowEnd: at(k), close: 3_000 + k });
    const ethCandles = Array.from({ length: 30 }, (_, i) => candle(eth(i + 1)));
    await stores.candles.write(ethCandles);
    await bus.publish(topics.candles, ethCandles);
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${api.port}`);
    // With the pair in the URL the page asks its series at once, beside the list of pairs: a 404 while it has none.
    const notFound: string[] = [];
    page.on('response', (r) => {
      if (r.status() === 404) notFound.push(new URL(r.url()).pathname);
    });
    await page.goto(`http://127.0.0.1:${api.port}/?pair=ETH-USDT`);
    const msg = await page.waitForSelector('[data-state="warming-up"]', { timeout: 30_000 });
    assert.match(
      (await msg.textContent()) ?? '',
      /ETH-USDT has candles but no predictions yet: its indicators need 61 minutes of market time .* Pairs with predictions: BTC-USDT\./,
    );

    const ethPredictions = Array.from({ length: 25 }, (_, i) =>
      prediction({ ...eth(i + 1), modelName: 'cryptocast-price' }),
    );
    const verdicts = ethPredictions.map((p) =>
      scorePrediction(p, 3_000 + (p.targetTs - T0) / MIN, p.targetTs),
    );
    await stores.predictions.write(ethPredictions);
    await stores.errors.write(verdicts);
    await bus.publish(topics.predictions, ethPredictions);
    await bus.publish(topics.predictionErrors, verdicts);
    const s = await waitForDashboard(
      page,
      'ETH-USDT drawn once it has predictions',
      (s) => s.status === 'live' && s.predictions === ethPredictions.length,
      40_000,
    );
    assert.equal(s.pair, 'ETH-USDT');
    assert.equal(s.candles, ethCandles.length);
    assert.equal(await page.$('[data-state="warming-up"]'), null, 'the notice is gone');
    assert.deepEqual(notFound, ['/v1/dashboard/series']);
    assert.deepEqual(
      seen.problems.filter((p) => !/status of 404/.test(p)),
      [],
    );
    await page.close();
  });

  it('a pair with nothing: the picker shows that pair, and picking one with predictions goes to it', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${api.port}/?pair=SOL-USD`);
    await page.waitForSelector('[data-state="unknown-pair"]', { timeout: 30_000 });
    assert.equal(await page.inputValue('#pair'), 'SOL-USD', 'the picker shows the pair asked');
    await page.selectOption('#pair', 'BTC-USDT');
    const s = await waitForDashboard(page, 'BTC-USDT drawn', (s) => s.status === 'live', 30_000);
    assert.equal(s.pair, 'BTC-USDT');
    assert.equal(new URL(page.url()).searchParams.get('pair'), 'BTC-USDT');
    await page.close();
  });

  it('a candle published again with late trades (revision 1) is drawn as revised, live and after a reconnect', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${api.port}`);
    // The page's socket, through a proxy the test can cut: while `away`, a new socket reaches nothing (the page
    // subscribes into the void) until the test closes it.
    const proxy = { away: false, sockets: [] as WebSocketRoute[] };
    await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
      proxy.sockets.push(ws);
      if (!proxy.away) ws.connectToServer();
    });
    await page.goto(`http://127.0.0.1:${api.port}/?pair=BTC-USDT`);
    await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    const first = candles.at(-2)!;
    const drawnClose = async () => (await drawnCandles(page)).find((p) => p.t === first.windowEnd)?.v;
    const untilDrawn = async (close: number, what: string) => {
      const drawn = await waitFor(what, drawnClose, (v) => v === close, { timeoutMs: 15_000 }).catch(() =>
        drawnClose(),
      );
      assert.equal(drawn, close, what);
    };
    const revised: Candle = { ...first, close: first.close + 500, high: first.close + 500, revision: 1 };
    // As the candle stage does under `--late-policy revise`: the store keeps the revision, the topic carries it.
    await stores.candles.write([revised]);
    await bus.publish(topics.candles, [revised]);
    await untilDrawn(revised.close, 'the revised close is drawn live');

    // The connection lost: a revision made meanwhile comes with the page's resume (from its newest candle).
    proxy.away = true;
    await proxy.sockets.at(-1)!.close();
    await waitFor(
      'the page reconnects',
      () => proxy.sockets.length,
      (n) => n >= 2,
      { timeoutMs: 30_000 },
    );
    const again: Candle = { ...revised, close: revised.close + 100, high: revised.close + 100, revision: 2 };
    await stores.candles.write([again]);
    await bus.publish(topics.candles, [again]);
    proxy.away = false;
    await proxy.sockets.at(-1)!.close();
    await waitFor(
      'the page reconnects again',
      () => proxy.sockets.length,
      (n) => n >= 3,
      {
        timeoutMs: 60_000,
      },
    );
    await waitForDashboard(page, 'live again', (s) => s.status === 'live', 30_000);
    await untilDrawn(again.close, 'the revision made while the page was away is drawn');
    assert.deepEqual(seen.problems, []);
    await page.close();
  });
});
