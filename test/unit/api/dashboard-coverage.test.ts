import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COVERAGE_ALERT_BAND, coverageVerdict } from '../../../src/dashboard/web/coverage.ts';
import { qualityPanel } from '../../../src/dashboard/web/panels.ts';
import type { Figures, Quality } from '../../../src/dashboard/web/types.ts';
import { defaultRules } from '../../../src/monitoring/alerts/rules.ts';

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
function coverageClasses(windows: Record<string, Figures>): Record<string, string> {
  const q: Quality = {
    pair: 'BTC/USD',
    clock: 0,
    clockKind: 'wall',
    coverageTarget: 0.8,
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
  const hour = coverageVerdict(0.8, 60, 0.8);
  assert.equal(hour.cls, 'good');
  assert.ok(Math.abs(hour.noise![0] - (0.8 - 1.96 * Math.sqrt(0.16 / 60))) < 1e-12);
  assert.equal(coverageVerdict(0.905, 1_440, 0.8).cls, 'bad');
  assert.equal(coverageVerdict(0.85, 1_440, 0.8).cls, '');
  assert.deepEqual(coverageVerdict(null, 0, 0.8), { cls: '', noise: null });
  // On the alert's own window and count, red is exactly the alert's condition.
  for (let c = 0.5; c <= 1; c += 0.005) {
    const red = coverageVerdict(c, 1_440, 0.8).cls === 'bad';
    assert.equal(red, c < COVERAGE_ALERT_BAND.low || c > COVERAGE_ALERT_BAND.high, `coverage ${c}`);
  }
});

test('the band the page mirrors is the default interval-miscalibrated rule band', () => {
  const rule = defaultRules().find((r) => r.kind === 'coverage_outside');
  assert.ok(rule && rule.kind === 'coverage_outside');
  assert.deepEqual({ low: rule.low, high: rule.high }, COVERAGE_ALERT_BAND);
});
