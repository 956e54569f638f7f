import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { RunningApi } from '../../src/api/api-service.ts';
import { scorePrediction } from '../../src/monitoring/score.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { waitForDashboard, watch } from '../support/browser.ts';
import { type DashboardFixture, dashboardFixture } from '../support/dashboard-fixture.ts';
import { candle, MIN, prediction } from '../support/factories.ts';

/**
 * The charts' time axes in a browser of another time zone and language (Chromium's `timezoneId` and `locale`, as
 * `TZ=… chromium --lang=…`): the minutes are labelled in UTC, as the crosshair, the panels, the API and the CLI
 * label them, and in the same digits and form whatever the language. Six hours of minutes across a UTC day boundary
 * and the night New York's clocks went forward (2026-03-08, 02:00 local = 07:00 UTC; the hour 02:00–03:00 does not
 * exist there).
 */
const START = Date.UTC(2026, 2, 7, 22, 0);
const N = 360;

/**
 * Every text drawn on a canvas of the page, with its x, whether that canvas is in a chart's time-axis row (the last
 * row of the chart's table), and the chart's id. A string: the tests' types have no DOM.
 */
const RECORD_CANVAS_TEXTS = `(() => {
  const texts = [];
  globalThis.__texts = texts;
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, x, y, maxWidth) {
    const table = this.canvas.closest('table');
    const row = this.canvas.closest('tr');
    texts.push({
      text: String(text),
      x,
      timeAxis: table !== null && row !== null && row === table.rows[table.rows.length - 1],
      chart: this.canvas.closest('.chart')?.id ?? null,
    });
    return maxWidth === undefined ? fill.call(this, text, x, y) : fill.call(this, text, x, y, maxWidth);
  };
})()`;

type Drawn = { text: string; x: number; timeAxis: boolean; chart: string | null }[];

/**
 * The labels of a chart's time axis as painted after a resize (which repaints every pane), left to right: each tick
 * once (a pane may be painted more than once; a tick is its text at its x).
 */
async function timeAxisLabels(page: Page, chart: 'market' | 'errors', width: number): Promise<string[]> {
  await page.evaluate('globalThis.__texts.length = 0');
  await page.setViewportSize({ width, height: 900 });
  await page.evaluate(
    'new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(r))))',
  );
  const ticks = new Map<string, { text: string; x: number }>();
  for (const t of (await page.evaluate('globalThis.__texts')) as Drawn)
    if (t.timeAxis && t.chart === chart) ticks.set(`${t.text}@${Math.round(t.x)}`, t);
  return [...ticks.values()].sort((a, b) => a.x - b.x).map((t) => t.text);
}

describe('dashboard in Chromium: time axes in another time zone and language', () => {
  const bus = new InProcessBus();
  let browser: Browser;
  let api: RunningApi;
  let fixture: DashboardFixture | undefined;

  before(async () => {
    fixture = await dashboardFixture(bus, 'cc-dash-time-', async (stores) => {
      const at = (k: number) => START + k * MIN;
      const close = (k: number) => 60_000 + 50 * Math.sin(k / 9);
      const candles = Array.from({ length: N }, (_, i) =>
        candle({ windowEnd: at(i + 1), close: close(i + 1) }),
      );
      const predictions = Array.from({ length: N - 5 }, (_, i) =>
        prediction({ windowEnd: at(i + 1), close: close(i + 1), modelName: 'cryptocast-price' }),
      );
      await stores.candles.write(candles);
      await stores.predictions.write(predictions);
      await stores.errors.write(
        predictions.map((p) => scorePrediction(p, close((p.targetTs - START) / MIN), p.targetTs)),
      );
    });
    ({ browser, api } = fixture);
  });
  after(() => fixture?.close());

  for (const [timezoneId, locale] of [
    ['America/New_York', 'de-DE'],
    ['Asia/Kolkata', 'ar-EG'],
  ] as const)
    it(`in ${timezoneId} with ${locale}: each tick of both charts is labelled with its UTC time, in one form`, async () => {
      const context = await browser.newContext({
        timezoneId,
        locale,
        viewport: { width: 1440, height: 900 },
      });
      const page = await context.newPage();
      const seen = watch(page, `127.0.0.1:${api.port}`);
      await page.addInitScript(RECORD_CANVAS_TEXTS);
      await page.goto(`http://127.0.0.1:${api.port}/?pair=BTC-USDT`);
      await waitForDashboard(page, 'live', (s) => s.status === 'live' && s.candles === N, 30_000);
      for (const [chart, width] of [
        ['market', 1400],
        ['errors', 1440],
      ] as const) {
        const labels = await timeAxisLabels(page, chart, width);
        assert.ok(labels.length >= 4, `${chart}: the time axis has labels: ${JSON.stringify(labels)}`);
        // UTC, as the crosshair's label and the panels write it: HH:MM, and MM-DD at a UTC day boundary.
        assert.deepEqual(
          labels.filter((l) => !/^(\d\d:\d\d|\d\d-\d\d)$/.test(l)),
          [],
          `${chart}: every label is HH:MM or MM-DD (ASCII digits): ${JSON.stringify(labels)}`,
        );
        assert.deepEqual(
          labels.filter((l, i) => labels.indexOf(l) !== i),
          [],
          `${chart}: no two ticks have the same label: ${JSON.stringify(labels)}`,
        );
        // The market chart shows all six hours (fitted); the error chart its newest hours at the library's spacing.
        if (chart === 'market')
          assert.ok(
            labels.includes('03-08'),
            `${chart}: the UTC day boundary is labelled 03-08: ${JSON.stringify(labels)}`,
          );
        assert.ok(
          labels.some((l) => l.startsWith('02:')),
          `${chart}: the UTC hour 02:00–03:00 is labelled as such: ${JSON.stringify(labels)}`,
        );
      }
      assert.deepEqual(seen.problems, []);
      await context.close();
    });
});
