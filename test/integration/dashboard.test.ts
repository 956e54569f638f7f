import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Route, WebSocketRoute } from 'playwright-core';
import { type RunningApi, startApi } from '../../src/api/api-service.ts';
import { type CandlesTable, openCandlesTable } from '../../src/candles/store/candles-table.ts';
import type { PredictionsStore } from '../../src/inference/predictions-store.ts';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
import type { PredictionError } from '../../src/schemas/prediction-error.ts';
import { topics } from '../../src/schemas/topics.ts';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { dashboardState, launchChromium, waitForDashboard, watch } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { KRAKEN_REST_TRADES } from '../support/data.ts';
import { stumpChampionRegistry } from '../support/monitoring.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The dashboard in a real browser (Debian's Chromium, playwright-core), served by a real API over the stores of a
 * real replay: it loads clean and entirely from the API, shows what the API holds, takes live records without a
 * reload, and recovers when the API restarts. Screenshots (desktop and phone width) go to the folder it prints.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(
  ROOT,
  '.data',
  'test-artifacts',
  `dashboard-${new Date().toISOString().replace(/[:.]/g, '-')}`,
);

/**
 * A proxy in front of the API's socket, on `page`. `mute`: the predictions the API sends are not passed on (the page
 * misses them). `failing`: a predictions subscription from a since is passed on without it (the API sends only the
 * latest) and answered, after the API's 'subscribed', with the error frame the API sends when its store does not
 * answer in time — what a slow store does to a resume, for as many times as the test says. Each resume is recorded,
 * and the API's `replayed` frames of the channel counted.
 */
async function resumeFailingProxy(page: Page) {
  const proxy = {
    mute: false,
    failing: 0,
    resumes: [] as { at: number; since: number; failed: boolean }[],
    sockets: [] as { page: WebSocketRoute; api: WebSocketRoute }[],
    replayedFrames: 0,
  };
  await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
    const server = ws.connectToServer();
    proxy.sockets.push({ page: ws, api: server });
    let inject = false;
    server.onMessage((m) => {
      const msg = JSON.parse(String(m)) as { type: string; channel?: string };
      if (msg.type === 'replayed' && msg.channel === 'predictions') proxy.replayedFrames++;
      if (proxy.mute && msg.type === 'prediction') return;
      ws.send(m);
      if (inject && msg.type === 'subscribed' && msg.channel === 'predictions') {
        inject = false;
        ws.send(
          JSON.stringify({
            type: 'error',
            error: 'replay_failed',
            channel: 'predictions',
            pair: 'BTC-USDT',
            message: 'could not replay BTC-USDT: the store did not answer within 10000 ms',
          }),
        );
      }
    });
    ws.onMessage((m) => {
      const msg = JSON.parse(String(m)) as { type: string; channel?: string; since?: number };
      if (msg.type === 'subscribe' && msg.channel === 'predictions' && msg.since !== undefined) {
        const failed = proxy.failing > 0;
        proxy.resumes.push({ at: Date.now(), since: msg.since, failed });
        if (failed) {
          proxy.failing--;
          inject = true;
          const { since: _, ...rest } = msg;
          return server.send(JSON.stringify(rest));
        }
      }
      server.send(m);
    });
  });
  return proxy;
}

describe('dashboard in Chromium', () => {
  let browser: Browser;
  let env: NodeJS.ProcessEnv;
  let file: string;
  const bus = new InProcessBus();
  let stores: { predictions: PredictionsStore; errors: ErrorsStore; candles: CandlesTable };
  let api: RunningApi;
  let port = 0;

  const start = async (p = 0) => {
    api = await startApi({
      bus,
      store: stores.predictions,
      errorsStore: stores.errors,
      candlesTable: stores.candles,
      pairs: ['BTC/USDT'],
      registry: new LocalRegistry(env.CRYPTOCAST_REGISTRY!),
      modelName: 'cryptocast-price',
      port: p,
      host: '127.0.0.1',
      qualityClock: 'event',
    });
    return api.port;
  };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    env = await stumpChampionRegistry();
    file = join(scratchDir('cc-dash-'), 'cryptocast.duckdb');
    const run = runCli(
      ['run', '--json', '--port', '0', '--store', `duckdb:${file}`, '--data', KRAKEN_REST_TRADES],
      env,
    );
    assert.equal(await run.exited, 0, run.stderr());
    stores = {
      predictions: await openPredictionsStore(`duckdb:${file}`),
      errors: await openErrorsStore(`duckdb:${file}`),
      candles: await openCandlesTable(`duckdb:${file}`),
    };
    port = await start();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await api?.close();
    await stores?.predictions.close();
    await stores?.errors.close();
    await stores?.candles.close();
  });

  it('loads with no console error, no failed request, nothing from another host; shows what the API holds', async (t) => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const seen = watch(page, `127.0.0.1:${port}`);
    await page.goto(`http://127.0.0.1:${port}/`);
    await waitForDashboard(page, 'the first paint', (s) => s.firstPaintMs !== null);
    await page.waitForSelector('[data-metric="mae"][data-window="7d"]', { timeout: 30_000 });
    const s = (await dashboardState(page))!;
    const base = `http://127.0.0.1:${port}`;
    const candles = (await (
      await fetch(
        `${base}/v1/candles?pair=BTC-USDT&from=${Date.UTC(2025, 10, 10)}&to=${Date.UTC(2025, 10, 12)}&limit=1000`,
      )
    ).json()) as { items: Candle[] };
    const quality = (await (await fetch(`${base}/v1/quality?pair=BTC-USDT`)).json()) as {
      windows: Record<string, Record<string, number | null>>;
    };
    assert.equal(s.pair, 'BTC-USDT');
    assert.equal(s.candles, candles.items.length, 'every replayed candle is on the chart');
    assert.equal(s.predictions, 351, 'every prediction, at its target time');
    assert.equal(s.verdicts, 346, 'every matured prediction coloured hit / miss / tie');
    for (const w of ['1h', '24h', '7d'])
      for (const metric of ['count', 'mae', 'skill', 'directionalAccuracy', 'coverage']) {
        const cell = await page.getAttribute(`[data-window="${w}"][data-metric="${metric}"]`, 'data-value');
        assert.equal(Number(cell), quality.windows[w]![metric], `${w} ${metric}`);
      }
    assert.match((await page.textContent('#model')) ?? '', /cryptocast-price v1/);
    assert.match((await page.textContent('#health')) ?? '', /last message per topic/);
    await page.screenshot({ path: join(ARTIFACTS, 'desktop.png'), fullPage: true });
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    const phoneSeen = watch(phone, `127.0.0.1:${port}`);
    await phone.goto(`${base}/`);
    await waitForDashboard(phone, 'the first paint', (s) => s.firstPaintMs !== null);
    const overflow = (await phone.evaluate(
      'document.documentElement.scrollWidth - window.innerWidth',
    )) as number;
    assert.ok(overflow <= 1, `no horizontal scroll at phone width (${overflow}px too wide)`);
    await phone.screenshot({ path: join(ARTIFACTS, 'phone.png'), fullPage: true });
    await phone.close();
    t.diagnostic(`screenshots in ${ARTIFACTS}`);
    process.stdout.write(`dashboard screenshots: ${ARTIFACTS}\n`);
    assert.deepEqual([...seen.problems, ...phoneSeen.problems], []);
    assert.deepEqual([...seen.foreign, ...phoneSeen.foreign], [], 'requests to another host');
    await page.close();
  });

  it('a live candle and prediction appear without a reload; after an API restart the page reconnects and misses nothing', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    await page.goto(`http://127.0.0.1:${port}/`);
    const before = await waitForDashboard(page, 'live', (s) => s.status === 'live');
    const last = (await stores.predictions.latest('BTC/USDT'))!;
    const next = (p: Prediction, k: number): Prediction => ({
      ...p,
      windowEnd: p.windowEnd + k * 60_000,
      targetTs: p.targetTs + k * 60_000,
      createdAt: p.createdAt + k * 60_000,
      predictedClose: p.predictedClose + k,
    });
    const live = next(last, 1);
    await stores.predictions.write([live]);
    await bus.publish(topics.predictions, [live]);
    await waitForDashboard(page, 'the live prediction', (s) => s.predictions === before.predictions + 1);

    const beforeRestart = seen.problems.length;
    await api.close();
    await waitForDashboard(page, 'down', (s) => s.status === 'down');
    assert.match((await page.textContent('#status')) ?? '', /API unreachable — reconnecting in \d+ s/);
    // Made while the API is away (the predictor does not wait for it): the page must get it after the restart.
    const whileDown = next(last, 2);
    await stores.predictions.write([whileDown]);
    await start(port);
    await waitForDashboard(page, 'live', (s) => s.status === 'live');
    const liveAgain = seen.problems.length;
    const after = await waitForDashboard(
      page,
      'the prediction made while down',
      (s) => s.predictions === before.predictions + 2,
    );
    assert.equal(after.lastPrediction, whileDown.windowEnd);
    const refused = /ERR_CONNECTION_REFUSED|WebSocket connection/;
    // While the API closes, a request that reaches it is answered 503 (Fastify's return503OnClosing) rather than
    // refused: the page retries either way. Only in that window.
    const restart = seen.problems.slice(beforeRestart, liveAgain);
    const failures = [
      ...seen.problems.slice(0, beforeRestart),
      ...restart.filter((p) => !refused.test(p) && !/status of 503 \(Service Unavailable\)/.test(p)),
      ...seen.problems.slice(liveAgain).filter((p) => !refused.test(p)),
    ];
    assert.deepEqual(failures, [], 'nothing but the refused connections and 503s of the restart');
    await page.close();
  });

  it('the first paint fails (a store away: 503): the page says so, retries with back-off, then draws and goes live', async () => {
    const page = await browser.newPage();
    let refused = 0;
    await page.route('**/v1/dashboard/series?*', (route) => {
      if (refused++ > 0) return route.continue();
      return route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: 'store_unavailable', message: 'a store is unavailable' }),
      });
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#status[data-status="retrying"]', { timeout: 30_000 });
    assert.match((await page.textContent('#status')) ?? '', /a store is unavailable — retrying in \d+ s/);
    const s = await waitForDashboard(page, 'the first paint, then live', (s) => s.status === 'live', 30_000);
    assert.equal(refused, 2, 'asked again after the 503');
    assert.ok(s.firstPaintMs !== null && s.predictions > 0, 'drawn after the retry');
    await page.close();
  });

  it('a malformed panel answer (a news signal without its score, a health report without topics) spoils only its panel', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    const json = (body: unknown) => ({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify(body),
    });
    await page.route('**/v1/news?*', (route) =>
      route.fulfill(
        json({
          items: [
            {
              id: 'n1',
              title: 'BTC moves',
              url: null,
              source: 'feed',
              publishedAt: Date.UTC(2025, 10, 11),
              signals: [{ coin: 'BTC', label: 'positive', model: 'm', baseline: false }],
            },
          ],
        }),
      ),
    );
    await page.route('**/v1/pipeline', (route) => route.fulfill(json({ at: 0, alerts: [] })));
    await page.goto(`http://127.0.0.1:${port}/`);
    await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    await page.waitForSelector('#news [data-state="malformed"]', { timeout: 30_000 });
    await page.waitForSelector('#health [data-state="malformed"]', { timeout: 30_000 });
    assert.match(
      (await page.textContent('#model')) ?? '',
      /cryptocast-price v1/,
      'the other panels are drawn',
    );
    assert.match((await page.textContent('#news')) ?? '', /malformed answer from \/v1\/news/);
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('malformed live frames (no data, a missing price, a null band, a time that is not a number) are dropped; the good ones are drawn', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    let socket: WebSocketRoute | undefined;
    // The page's WebSocket, passed through to the API, with frames of our own put in.
    await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
      ws.connectToServer();
      socket = ws;
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    const before = await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    const t = before.lastCandle!;
    const candle = (k: number) => ({
      pair: 'BTC-USDT',
      windowStart: t + (k - 1) * 60_000,
      windowEnd: t + k * 60_000,
      open: 100,
      high: 101,
      low: 99,
      close: 100.5,
      volume: 1,
      filled: false,
    });
    const prediction = (k: number) => ({
      pair: 'BTC-USDT',
      windowEnd: t + k * 60_000,
      targetTs: t + (k + 5) * 60_000,
      close: 100,
      predictedClose: 101,
      p10: 99,
      p90: 103,
      modelName: 'cryptocast-price',
      modelVersion: 1,
      latencyMs: 3,
    });
    const send = (type: string, data: unknown) => socket!.send(JSON.stringify({ type, data }));
    send('candle', null);
    send('candle', { ...candle(1), close: undefined });
    send('candle', { ...candle(2), high: null });
    send('prediction', { ...prediction(1), p90: null });
    send('prediction', { ...prediction(2), targetTs: 'soon' });
    send('prediction_error', {
      pair: 'BTC-USDT',
      windowEnd: t,
      targetTs: t,
      status: 'scored',
      absError: null,
    });
    send('candle', candle(3));
    send('prediction', prediction(3));
    const after = await waitForDashboard(
      page,
      'the good candle and prediction',
      (s) => s.lastCandle === candle(3).windowEnd && s.lastPrediction === prediction(3).windowEnd,
      30_000,
    );
    assert.equal(after.candles, before.candles + 1, 'only the good candle is drawn');
    assert.equal(after.predictions, before.predictions + 1, 'only the good prediction is drawn');
    assert.equal(after.verdicts, before.verdicts, 'no verdict from a frame without its error');
    assert.deepEqual(after.live, { candles: 1, predictions: 1, errors: 0 });
    assert.deepEqual(after.dropped, { candles: 3, predictions: 2, errors: 1 });
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('nulls in the first paint (a NaN stored upstream) leave out those records only; the rest is drawn and goes live', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    let sent: { candles: number; predictions: number } | undefined;
    await page.route('**/v1/dashboard/series?*', async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as {
        candles: { t: number[]; c: (number | null)[] };
        predictions: { t: number[]; hi: (number | null)[] };
      };
      body.candles.c[5] = null;
      body.predictions.hi[7] = null;
      sent = { candles: body.candles.t.length, predictions: body.predictions.t.length };
      await route.fulfill({ response: res, body: JSON.stringify(body) });
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    const s = await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    assert.equal(s.candles, sent!.candles - 1);
    assert.equal(s.predictions, sent!.predictions - 1);
    assert.deepEqual(s.dropped, { candles: 1, predictions: 1, errors: 0 });
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('news from a feed: a title with markup is text, and only an http(s) link is a link (no javascript: or data: URL)', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    const item = (id: string, title: string, url: string) => ({
      id,
      title,
      url,
      source: 'feed <b>x</b>',
      publishedAt: Date.UTC(2025, 10, 11),
      signals: [],
    });
    await page.route('**/v1/news?*', (route) =>
      route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({
          items: [
            item('a', 'Script <img src=x id=injected>', 'javascript:document.title="pwned"'),
            item('b', 'Data link', 'data:text/html,<script>alert(1)</script>'),
            item('c', 'Plain link', 'https://example.org/btc'),
          ],
        }),
      }),
    );
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#news li', { timeout: 30_000 });
    const links = await Promise.all((await page.locator('#news a').all()).map((a) => a.getAttribute('href')));
    assert.deepEqual(links, ['https://example.org/btc'], 'only the https link is a link');
    const text = (await page.textContent('#news')) ?? '';
    assert.match(text, /Script <img src=x id=injected>/, 'the markup is shown as text');
    assert.match(text, /Data link/);
    assert.equal(await page.$('#injected'), null, 'no element from the data');
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('a panel whose source fails: marked stale with the reason (kept), or unavailable when it never loaded (not blank)', async () => {
    const page = await browser.newPage();
    const unavailable = (route: Route, message: string) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: 'registry_unavailable', message }),
      });
    let pipelineDown = false;
    await page.route('**/v1/model', (route) => unavailable(route, 'the model registry is unavailable'));
    await page.route('**/v1/pipeline', (route) =>
      pipelineDown ? unavailable(route, 'the transport is unavailable') : route.continue(),
    );
    await page.goto(`http://127.0.0.1:${port}/`);
    const model = await page.waitForSelector('#model [data-state="unavailable"]', { timeout: 30_000 });
    assert.match((await model.textContent()) ?? '', /the model registry is unavailable/);
    await page.waitForSelector('#health table', { timeout: 30_000 });
    pipelineDown = true;
    // The panels refresh every 10 s: the next refresh fails.
    const stale = await page.waitForSelector('#health [data-state="stale"]', { timeout: 30_000 });
    assert.match(
      (await stale.textContent()) ?? '',
      /not refreshed since .* UTC: the transport is unavailable/,
    );
    assert.match(
      (await page.textContent('#health')) ?? '',
      /last message per topic/,
      'the last answer is kept',
    );
    pipelineDown = false;
    await page.waitForSelector('#health [data-state="stale"]', { state: 'detached', timeout: 30_000 });
    await page.close();
  });

  it('a WebSocket accepted then closed at once (the API over its client limit: 1013) is retried with growing back-off', async () => {
    const page = await browser.newPage();
    let connections = 0;
    // Stands in for the API's socket: opened, then closed with 1013 (try again later) before any subscription is
    // answered (the page's first frame shows it opened).
    await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
      connections++;
      ws.onMessage(() => ws.close({ code: 1013, reason: 'too many clients' }));
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    // Once the fourth socket was opened, the next 'down' is its close.
    const s = await waitForDashboard(
      page,
      'down after the fourth close',
      (s) => connections >= 4 && s.status === 'down',
      60_000,
    );
    // The fourth retry's delay is drawn from [4 s, 8 s] (1 s doubling, jittered in [cap/2, cap]); it was 1 s every time.
    const seconds = Number(/reconnecting in (\d+) s/.exec(s.statusDetail)?.[1]);
    assert.ok(seconds >= 4, `after ${connections} immediate closes: ${s.statusDetail}`);
    await page.close();
  });

  it('the newest candle older than 3 minutes: the page marks its data stale, however live the socket', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const last = (await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000)).lastCandle!;
    // The page's clock is the subject (its Date only; timers run): one minute after the newest candle, then ten.
    await page.clock.setFixedTime(last + 60_000);
    await page.waitForSelector('#freshness[data-stale="false"]', { timeout: 30_000 });
    assert.match((await page.textContent('#freshness')) ?? '', /newest candle 1\.0 min ago/);
    await page.clock.setFixedTime(last + 10 * 60_000);
    await page.waitForSelector('#freshness[data-stale="true"]', { timeout: 30_000 });
    assert.match(
      (await page.textContent('#freshness')) ?? '',
      /stale: newest candle .* UTC \(10\.0 min ago\)/,
    );
    assert.equal((await dashboardState(page))!.status, 'live', 'the socket is still up');
    await page.close();
  });

  it('a replay the API could not do (replay_failed) is told: records may be missing, reload to fill the gap', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
      const server = ws.connectToServer();
      let told = false;
      // The API's own answer when the store does not answer a resume in time; then live records follow.
      server.onMessage((m) => {
        ws.send(m);
        if (!told && String(m).includes('"subscribed"')) {
          told = true;
          ws.send(
            JSON.stringify({
              type: 'error',
              error: 'replay_failed',
              message: 'could not replay BTC-USDT: the store did not answer within 10000 ms',
            }),
          );
        }
      });
      ws.onMessage((m) => server.send(m));
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    const gap = await page.waitForSelector('#message [data-state="gap"]', { timeout: 30_000 });
    assert.match(
      (await gap.textContent()) ?? '',
      /may be missing.*could not replay BTC-USDT: the store did not answer within 10000 ms.*Reload/,
    );
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('a replay the API could not do, naming its channel: the page asks that channel again with back-off until the gap is filled', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    const proxy = await resumeFailingProxy(page);
    await page.goto(`http://127.0.0.1:${port}/`);
    const before = await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    const last = (await stores.predictions.latest('BTC/USDT'))!;
    const next = (k: number): Prediction => ({
      ...last,
      windowEnd: last.windowEnd + k * 60_000,
      targetTs: last.targetTs + k * 60_000,
      createdAt: last.createdAt + k * 60_000,
      predictedClose: last.predictedClose + k,
    });
    // Three predictions the page does not get; then its socket drops and its resume is not replayed, twice.
    proxy.mute = true;
    const missed = [next(1), next(2), next(3)];
    await stores.predictions.write(missed);
    await bus.publish(topics.predictions, missed);
    await waitFor(
      "the API's feed to hold the last of them",
      async () =>
        (
          (await (await fetch(`http://127.0.0.1:${port}/v1/predictions/latest?pair=BTC-USDT`)).json()) as {
            windowEnd?: number;
          }
        ).windowEnd,
      (w) => w === missed[2]!.windowEnd,
      { timeoutMs: 30_000, everyMs: 50 },
    );
    proxy.failing = 2;
    proxy.mute = false;
    proxy.resumes.length = 0;
    const dropped = proxy.sockets.at(-1)!;
    await dropped.page.close();
    await dropped.api.close();
    const gap = await page.waitForSelector('#message [data-state="gap"]', { timeout: 30_000 });
    assert.match(
      (await gap.textContent()) ?? '',
      /may be missing from the predictions chart: could not replay BTC-USDT: the store did not answer within 10000 ms\. Asking again in \d+ s/,
    );
    const filled = await waitForDashboard(
      page,
      'the gap filled',
      (s) => s.refilled.predictions === 1,
      60_000,
    );
    assert.equal(
      filled.predictions,
      before.predictions + 3,
      'the missed predictions are drawn, without a reload',
    );
    assert.equal(filled.lastPrediction, missed[2]!.windowEnd);
    await page.waitForSelector('#message [data-state="gap"]', { state: 'detached', timeout: 30_000 });
    // Every resume from the page's newest before the gap, until one went through; each after a longer wait.
    assert.deepEqual(
      proxy.resumes.map((r) => [r.since, r.failed]),
      [
        [before.lastPrediction, true],
        [before.lastPrediction, true],
        [before.lastPrediction, false],
      ],
    );
    // Jittered 1 s doubling: the first retry after ≥ 0.5 s, the second after ≥ 1 s.
    assert.ok(
      proxy.resumes[1]!.at - proxy.resumes[0]!.at >= 500,
      `first retry after ${proxy.resumes[1]!.at - proxy.resumes[0]!.at} ms`,
    );
    assert.ok(
      proxy.resumes[2]!.at - proxy.resumes[1]!.at >= 1_000,
      `second retry after ${proxy.resumes[2]!.at - proxy.resumes[1]!.at} ms`,
    );
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('a replay the API could not do, with nothing missing after all: the notice goes at the replay that went through, though no record comes', async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    // As above, a proxy that answers a predictions resume from a since, once, with the API's replay_failed frame. No
    // prediction is published meanwhile: the resume that goes through has nothing to replay, so no record of the
    // channel comes — only the API's `replayed` frame says the replay is whole.
    const proxy = await resumeFailingProxy(page);
    await page.goto(`http://127.0.0.1:${port}/`);
    const before = await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    proxy.failing = 1;
    proxy.resumes.length = 0;
    const dropped = proxy.sockets.at(-1)!;
    await dropped.page.close();
    await dropped.api.close();
    await page.waitForSelector('#message [data-state="gap"]', { timeout: 30_000 });
    const filled = await waitForDashboard(
      page,
      'the gap told filled',
      (s) => s.refilled.predictions === 1,
      30_000,
    );
    await page.waitForSelector('#message [data-state="gap"]', { state: 'detached', timeout: 30_000 });
    assert.deepEqual(
      proxy.resumes.map((r) => [r.since, r.failed]),
      [
        [before.lastPrediction, true],
        [before.lastPrediction, false],
      ],
    );
    assert.equal(filled.predictions, before.predictions, 'nothing was missing: nothing new drawn');
    assert.ok(proxy.replayedFrames >= 1, 'the API said the replay was whole');
    assert.deepEqual(seen.problems, []);
    await page.close();
  });

  it('the API still starting (/v1/ready 503): the page says what it waits for and retries, not "no predictions yet"', async () => {
    const page = await browser.newPage();
    let answered = 0;
    await page.route('**/v1/ready', (route) => {
      if (answered++ > 0) return route.continue();
      return route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({
          error: 'store_unavailable',
          message: 'waiting for the predictions store to open (the service log says why)',
        }),
      });
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#status[data-status="retrying"]', { timeout: 30_000 });
    assert.match(
      (await page.textContent('#status')) ?? '',
      /waiting for the predictions store to open .* retrying in \d+ s/,
    );
    const s = await waitForDashboard(page, 'live after the retry', (s) => s.status === 'live', 30_000);
    assert.equal(s.pair, 'BTC-USDT');
    assert.equal(await page.$('[data-state="no-data"]'), null, 'never "no predictions yet"');
    await page.close();
  });

  it("the 'retrying' status is red, as 'down' is: the page has no data yet either way", async () => {
    const page = await browser.newPage();
    // The API starting for as long as the test looks: the page stays 'retrying'.
    await page.route('**/v1/ready', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({
          error: 'store_unavailable',
          message: 'waiting for the predictions store to open',
        }),
      }),
    );
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#status[data-status="retrying"]', { timeout: 30_000 });
    // --bad resolved to a colour the way the browser writes it (rgb(…)), by a probe element.
    const colours = (await page.evaluate(`(() => {
      const probe = document.createElement('span');
      probe.style.color = getComputedStyle(document.documentElement).getPropertyValue('--bad').trim();
      document.body.append(probe);
      const bad = getComputedStyle(probe).color;
      probe.remove();
      return { status: getComputedStyle(document.getElementById('status')).color, bad };
    })()`)) as { status: string; bad: string };
    assert.equal(colours.status, colours.bad, "the 'retrying' status is coloured --bad");
    await page.close();
  });

  it('the panels unreachable for a while (the socket up): "down", then live again once they answer', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    const panels = /\/v1\/(quality|model|model\/history|news|pipeline)(\?|$)/;
    await page.route(panels, (route) => route.abort('connectionrefused'));
    // The panels refresh every 10 s: the next refresh fails, the one after answers.
    const down = await waitForDashboard(page, 'down', (s) => s.status === 'down', 30_000);
    assert.equal(down.statusDetail, 'panels could not be refreshed');
    await page.unroute(panels);
    await waitForDashboard(page, 'live again', (s) => s.status === 'live', 30_000);
    await page.close();
  });

  it('an unknown pair in the URL: a clear message and the pairs there are', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/?pair=SOL-USD`);
    const msg = await page.waitForSelector('[data-state="unknown-pair"]', { timeout: 30_000 });
    assert.match((await msg.textContent()) ?? '', /No data for SOL-USD\. Pairs with predictions: BTC-USDT/);
    await page.close();
  });

  it('no predictions and no champion: the page says how to train one', async () => {
    const dir = scratchDir('cc-dash-empty-');
    const empty = await startApi({
      bus: new InProcessBus(),
      store: await openPredictionsStore(':memory:'.replace(/^/, 'duckdb:')),
      pairs: ['BTC/USD'],
      registry: new LocalRegistry(dir),
      port: 0,
      host: '127.0.0.1',
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${empty.port}/`);
      const msg = await page.waitForSelector('[data-state="no-data"]', { timeout: 30_000 });
      assert.match((await msg.textContent()) ?? '', /train one first \(bash scripts\/price-model\.sh\)/);
      await page.close();
    } finally {
      await empty.close();
    }
  });

  // Last: it leaves a second version's predictions in the shared store (the series then has two per target time).
  it("two versions' predictions for one target time (a rollback): the champion's forecast is drawn, not the higher version's", async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    const champion = (
      (await (await fetch(`http://127.0.0.1:${port}/v1/model`)).json()) as { version: number }
    ).version;
    const last = (await stores.predictions.latest('BTC/USDT'))!;
    assert.equal(last.modelVersion, champion);
    const made = (k: number, version: number): Prediction => ({
      ...last,
      windowEnd: last.windowEnd + k * 60_000,
      targetTs: last.targetTs + k * 60_000,
      createdAt: last.createdAt + k * 60_000,
      modelVersion: version,
      predictedClose: last.predictedClose + (version === champion ? 0 : 1_000),
    });
    // The version rolled back from predicted the champion's newest minute too (stored before the page opens).
    const rolledBack = made(0, champion + 1);
    await stores.predictions.write([rolledBack]);
    const drawnAt = (targetTs: number) =>
      page.evaluate(
        (t) =>
          (
            globalThis as unknown as {
              __cryptocast: { predictionAt(t: number): { modelVersion: number } | null };
            }
          ).__cryptocast.predictionAt(t)?.modelVersion ?? null,
        targetTs,
      );
    await page.goto(`http://127.0.0.1:${port}/`);
    const live = await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    await page.waitForSelector('[data-field="model"]', { timeout: 30_000 });
    assert.equal(
      await drawnAt(last.targetTs),
      champion,
      'the first paint: the champion, not the higher version',
    );
    // Live, in either order: the champion's stays drawn.
    const later = [made(1, champion + 1), made(1, champion), made(2, champion), made(2, champion + 1)];
    await bus.publish(topics.predictions, later);
    await waitForDashboard(
      page,
      'the four live predictions',
      (s) => s.live.predictions >= live.live.predictions + 4,
      30_000,
    );
    assert.equal(
      await drawnAt(later[0]!.targetTs),
      champion,
      'live: the higher version first, then the champion',
    );
    assert.equal(
      await drawnAt(later[2]!.targetTs),
      champion,
      'live: the champion first, then the higher version',
    );
    assert.deepEqual(seen.problems, []);
    await page.close();
  });
  it("two versions' verdicts for one target time (a rollback): the dot and the error drawn are the drawn forecast's", async () => {
    const page = await browser.newPage();
    const seen = watch(page, `127.0.0.1:${port}`);
    const champion = (
      (await (await fetch(`http://127.0.0.1:${port}/v1/model`)).json()) as { version: number }
    ).version;
    const base = (await stores.predictions.latest('BTC/USDT'))!;
    const scored = (await stores.errors.range('BTC/USDT', 0, base.windowEnd + 1)).filter(
      (e) => e.status === 'scored',
    );
    const template = scored.at(-1)!;
    // Minutes after every other test's, each predicted by the champion and by the version rolled back from (higher).
    const prediction = (k: number, version: number): Prediction => ({
      ...base,
      windowEnd: base.windowEnd + k * 60_000,
      targetTs: base.targetTs + k * 60_000,
      createdAt: base.createdAt + k * 60_000,
      modelVersion: version,
      predictedClose: base.predictedClose + (version === champion ? 0 : 1_000),
    });
    // The champion's verdict a hit with a small error, the other version's a miss with a large one.
    const verdict = (k: number, version: number): PredictionError => ({
      ...template,
      windowEnd: base.windowEnd + k * 60_000,
      targetTs: base.targetTs + k * 60_000,
      modelVersion: version,
      directionHit: version === champion,
      absError: version === champion ? 1 : 999,
    });
    const stored = 10;
    const streamed = 11;
    // First paint: both versions' predictions and verdicts in the stores, the rolled-back version's verdict last.
    await stores.predictions.write([prediction(stored, champion), prediction(stored, champion + 1)]);
    await stores.errors.write([verdict(stored, champion)]);
    await stores.errors.write([verdict(stored, champion + 1)]);
    type Shown = { modelVersion: number; absError: number } | null;
    const shownAt = (targetTs: number) =>
      page.evaluate((t) => {
        const cc = (
          globalThis as unknown as {
            __cryptocast: {
              predictionAt(t: number): { modelVersion: number } | null;
              verdictAt(t: number): Shown;
              errorAt(t: number): Shown;
            };
          }
        ).__cryptocast;
        const pick = (e: Shown) =>
          e === null ? null : { modelVersion: e.modelVersion, absError: e.absError };
        return {
          forecast: cc.predictionAt(t)?.modelVersion ?? null,
          dot: pick(cc.verdictAt(t)),
          error: pick(cc.errorAt(t)),
        };
      }, targetTs);
    const expected = {
      forecast: champion,
      dot: { modelVersion: champion, absError: 1 },
      error: { modelVersion: champion, absError: 1 },
    };
    await page.goto(`http://127.0.0.1:${port}/`);
    const live = await waitForDashboard(page, 'live', (s) => s.status === 'live', 30_000);
    await page.waitForSelector('[data-field="model"]', { timeout: 30_000 });
    assert.deepEqual(await shownAt(prediction(stored, champion).targetTs), expected, 'the first paint');
    // Live: the predictions, then the verdicts, the rolled-back version's arriving last.
    await bus.publish(topics.predictions, [
      prediction(streamed, champion + 1),
      prediction(streamed, champion),
    ]);
    await bus.publish(topics.predictionErrors, [
      verdict(streamed, champion),
      verdict(streamed, champion + 1),
    ]);
    await waitForDashboard(
      page,
      'the two live verdicts',
      (s) => s.live.errors >= live.live.errors + 2,
      30_000,
    );
    assert.deepEqual(await shownAt(prediction(streamed, champion).targetTs), expected, 'live');
    assert.deepEqual(seen.problems, []);
    await page.close();
  });
});
