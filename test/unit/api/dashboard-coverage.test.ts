import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CoverageBand, coverageVerdict } from '../../../src/dashboard/web/coverage.ts';
import { qualityPanel } from '../../../src/dashboard/web/panels.ts';
import type { Figures, Quality } from '../../../src/dashboard/web/types.ts';
import { coverageAlertBand, defaultRules } from '../../../src/monitoring/alerts/rules.ts';

/** The shipped `interval-miscalibrated` rule's band, as `/v1/quality` serves it by default. */
const SHIPPED_BAND = coverageAlertBand(defaultRules(), 'BTC/USD');

const figures = (count: number, coverage: number): Figures => ({
  fromTs: 0,
  toTs: 0,
  count,
  unscorable: 0,
  mae: 1,
  rmse: 1,
  bias: 0,
  persistenceMae: 1,
  skill: 0,
  directionalAccuracy: 0.5,
  directionalCi95: [0.4, 0.6],
  ties: 0,
  coverage,
});

/** The class of each window's coverage cell, as the quality panel renders it. */
function coverageClasses(
  windows: Record<string, Figures>,
  coverageAlertBand: Quality['coverageAlertBand'] = SHIPPED_BAND,
): Record<string, string> {
  const q: Quality = {
    pair: 'BTC/USD',
    clock: 0,
    clockKind: 'wall',
    coverageTarget: 0.8,
    coverageAlertBand,
    windows,
    champion: null,
  };
  const html = qualityPanel(q, 'USD');
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<td data-window="([^"]+)" data-metric="coverage"[^>]*class="([^"]*)"/g))
    out[m[1]!] = m[2]!;
  return out;
}

test('coverage cell: sampling noise of a 60-prediction hour is not red; a miss past the alert band is', () => {
  assert.deepEqual(
    coverageClasses({
      // 72 % of 60: 7.5 points off, within chance for 60 predictions (±10): not red (it was, outside 80 % ± 5).
      '1h': figures(60, 0.72),
      // 75 % of 1,440: beyond chance (±2), inside the alert's 70–90 %: no colour, no alert.
      '24h': figures(1_440, 0.75),
      // 68 % of 10,080: beyond chance and outside the alert's band: red, as the alert fires.
      '7d': figures(10_080, 0.68),
    }),
    { '1h': 'good', '24h': '', '7d': 'bad' },
  );
  // An hour far off (60 % of 60) is red: beyond chance and outside the alert band.
  assert.deepEqual(coverageClasses({ '1h': figures(60, 0.6) }), { '1h': 'bad' });
});

test('coverageVerdict: the 95 % binomial band for the count, and red only outside the alert rule band too', () => {
  const hour = coverageVerdict(0.8, 60, 0.8, SHIPPED_BAND);
  assert.equal(hour.cls, 'good');
  assert.ok(Math.abs(hour.noise![0] - (0.8 - 1.96 * Math.sqrt(0.16 / 60))) < 1e-12);
  assert.equal(coverageVerdict(0.905, 1_440, 0.8, SHIPPED_BAND).cls, 'bad');
  assert.equal(coverageVerdict(0.85, 1_440, 0.8, SHIPPED_BAND).cls, '');
  assert.deepEqual(coverageVerdict(null, 0, 0.8, SHIPPED_BAND), { cls: '', noise: null });
  // On the alert's own window and count, red is exactly the alert's condition.
  for (let c = 0.5; c <= 1; c += 0.005) {
    const red = coverageVerdict(c, 1_440, 0.8, SHIPPED_BAND).cls === 'bad';
    assert.equal(red, c < SHIPPED_BAND!.low || c > SHIPPED_BAND!.high, `coverage ${c}`);
  }
});

test('the shipped rules band is the default interval-miscalibrated rule band (70–90 %)', () => {
  assert.deepEqual(SHIPPED_BAND, { rule: 'interval-miscalibrated', window: '24h', low: 0.7, high: 0.9 });
});

test('coverage cell: coloured by the band /v1/quality serves (a rules file), not the shipped 70–90 %', () => {
  const tight: CoverageBand & { rule: string; window: string } = {
    rule: 'tight',
    window: '24h',
    low: 0.78,
    high: 0.82,
  };
  // 75 % of 1,440: beyond chance; inside the shipped band (no colour), outside a tighter rule's band (red, it alerts).
  assert.deepEqual(coverageClasses({ '24h': figures(1_440, 0.75) }), { '24h': '' });
  assert.deepEqual(coverageClasses({ '24h': figures(1_440, 0.75) }, tight), { '24h': 'bad' });
  // A wider rule: 68 % is inside it, no colour where the shipped band made it red.
  const wide = { rule: 'wide', window: '24h', low: 0.6, high: 0.95 };
  assert.deepEqual(coverageClasses({ '24h': figures(1_440, 0.68) }, wide), { '24h': '' });
  // No rule watches the pair's coverage: nothing alerts, nothing is red.
  assert.deepEqual(coverageClasses({ '24h': figures(1_440, 0.5) }, null), { '24h': '' });
  assert.match(qualityTitle(tight), /alert band 78 %–82 %|alert band 78%–82%/);
});

/** The coverage cell's title for the 24-h window at 75 % of 1,440 predictions. */
function qualityTitle(coverageAlertBand: Quality['coverageAlertBand']): string {
  const q: Quality = {
    pair: 'BTC/USD',
    clock: 0,
    clockKind: 'wall',
    coverageTarget: 0.8,
    coverageAlertBand,
    windows: { '24h': figures(1_440, 0.75) },
    champion: null,
  };
  return /data-metric="coverage"[^>]*><span title="([^"]*)"/.exec(qualityPanel(q, 'USD'))?.[1] ?? '';
}
