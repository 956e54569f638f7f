import { type CoverageBand, coverageVerdict } from './coverage.ts';
import { duration, esc, num, pct, price, utc } from './format.ts';
import type { Figures, Model, ModelHistory, NewsEntry, PipelineHealth, Quality } from './types.ts';

/** The panels beside the charts, rendered from API data as HTML (data values escaped). */

/** A coverage cell's text and colour (see coverage.ts); its title says the band that chance allows for its count. */
function coverageCell(f: Figures, target: number, band: CoverageBand | null): [string, string] {
  const v = coverageVerdict(f.coverage, f.count, target, band);
  const alert = band ? `alert band ${pct(band.low, 0)}–${pct(band.high, 0)}` : 'no coverage alert rule';
  const title = v.noise
    ? ` title="chance alone: ${pct(v.noise[0], 1)}–${pct(v.noise[1], 1)} for ${num(f.count)} predictions; ${alert}"`
    : '';
  return [`<span${title}>${pct(f.coverage, 1)}</span>`, v.cls];
}

const ci = (x: number[] | null | undefined) => (x ? ` [${pct(x[0], 1)}, ${pct(x[1], 1)}]` : '');

export function qualityPanel(q: Quality, quote: string): string {
  const windows = Object.keys(q.windows);
  const wf = q.champion?.walkForward;
  const fig = (w: string) => q.windows[w]!;
  // The raw figure rides along in data-value (tests compare it with /v1/quality; people read the text).
  const cell = (w: string, metric: string, text: string, cls = '') =>
    `<td data-window="${w}" data-metric="${metric}" data-value="${String((fig(w) as unknown as Record<string, unknown>)[metric] ?? '')}" class="${cls}">${text}</td>`;
  const row = (label: string, metric: string, f: (w: string) => [string, string?], walk: string) =>
    `<tr><th scope="row">${label}</th>${windows.map((w) => cell(w, metric, ...f(w))).join('')}<td class="walk">${walk}</td></tr>`;
  const good = (ok: boolean | null) => (ok === null ? '' : ok ? 'good' : 'bad');
  return `
  <table class="quality">
    <caption>Rolling quality of ${esc(q.pair)}, windows ending ${utc(q.clock)}${q.clockKind === 'event' ? ' (replay clock)' : ''}</caption>
    <thead><tr><th></th>${windows.map((w) => `<th scope="col">${w}</th>`).join('')}<th scope="col" title="the champion's walk-forward, ${esc(wf?.scope ?? '')}">walk-forward</th></tr></thead>
    <tbody>
      ${row('predictions', 'count', (w) => [num(fig(w).count)], num(wf?.n ?? null))}
      ${row('MAE', 'mae', (w) => [price(fig(w).mae, quote)], price(wf?.mae ?? null, quote))}
      ${row('persistence MAE', 'persistenceMae', (w) => [price(fig(w).persistenceMae, quote)], price(wf?.persistenceMae ?? null, quote))}
      ${row('skill vs persistence', 'skill', (w) => [pct(fig(w).skill, 3), good(fig(w).skill === null ? null : fig(w).skill! > 0)], pct(wf?.skill ?? null, 3))}
      ${row('direction (95 % CI)', 'directionalAccuracy', (w) => [pct(fig(w).directionalAccuracy, 1) + ci(fig(w).directionalCi95)], pct(wf?.directionalAccuracy ?? null, 1) + ci(wf?.directionalCi95))}
      ${row(`p10–p90 coverage (target ${pct(q.coverageTarget, 0)})`, 'coverage', (w) => coverageCell(fig(w), q.coverageTarget, q.coverageAlertBand), pct(wf?.coverage ?? null, 1))}
      ${row('bias (predicted − actual)', 'bias', (w) => [price(fig(w).bias, quote)], '')}
    </tbody>
  </table>`;
}

export function modelPanel(m: Model | null, h: ModelHistory | null): string {
  if (m === null)
    return `<p class="notice" data-state="no-champion">No champion model yet: train one with <code>bash scripts/price-model.sh</code> or <code>cryptocast train --candles FILE</code>; predictions start as soon as one is promoted.</p>`;
  const gate = m.gate
    ? `${m.gate.promoted ? 'promoted' : 'refused'}: ${m.gate.reasons.map(esc).join('; ')}`
    : '—';
  const changes = (h?.changes ?? [])
    .slice(-8)
    .reverse()
    .map(
      (c) =>
        `<li>${utc(c.at)}: ${c.version === null ? 'no champion' : `v${c.version}`}${c.previous ? ` (was v${c.previous})` : ''} — ${esc(c.reason)}</li>`,
    )
    .join('');
  return `
  <dl class="model">
    <dt>model</dt><dd data-field="model">${esc(m.name)} v${m.version}</dd>
    <dt>trained</dt><dd>${utc(m.createdAt)} · code ${esc(m.codeVersion)}</dd>
    <dt>on</dt><dd>${utc(m.trainingWindow.from)} → ${utc(m.trainingWindow.to)} · ${esc(m.pairs.join(', '))} · ${m.features} features</dd>
    <dt>horizon</dt><dd>${duration(m.horizonMs)}</dd>
    <dt>gate</dt><dd>${gate}</dd>
  </dl>
  <h3>Champion history</h3>
  <ul class="history">${changes || '<li>—</li>'}</ul>`;
}

/**
 * A news item's URL as a link target, only when it is http(s): the URL is a feed's <link>, any scheme, and a
 * javascript: or data: link must not be one click away (the page's CSP blocks them today; a proxy in front may not
 * keep that header).
 */
function httpUrl(url: string | null): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

export function newsPanel(items: readonly NewsEntry[]): string {
  if (items.length === 0)
    return `<p class="notice">No news: the news pipeline is not running (<code>cryptocast service news</code> and <code>news-signals</code>).</p>`;
  return `<ul class="news">${items
    .map((n) => {
      const sig = n.signals
        .map(
          (s) =>
            `<span class="sentiment ${s.label}" title="${esc(s.model)}${s.baseline ? ' (baseline)' : ''}">${esc(s.coin)} ${s.label} ${s.score >= 0 ? '+' : ''}${s.score.toFixed(2)}</span>`,
        )
        .join(' ');
      const href = httpUrl(n.url);
      const title = href
        ? `<a href="${esc(href)}" rel="noopener noreferrer" target="_blank">${esc(n.title)}</a>`
        : esc(n.title);
      return `<li><time>${utc(n.publishedAt)}</time> ${title} <small>${esc(n.source)}</small> ${sig}</li>`;
    })
    .join('')}</ul>`;
}

export function healthPanel(h: PipelineHealth): string {
  const topics = h.topics
    .map(
      (t) =>
        `<tr><td>${esc(t.topic)}</td><td>${t.lastAppendedAt === null ? 'nothing yet' : `${duration(t.ageMs)} ago`}</td></tr>`,
    )
    .join('');
  const lags = h.consumerLag
    .map(
      (l) =>
        `<tr><td>${esc(l.group)} ← ${esc(l.topic)}</td><td class="${(l.records ?? 0) > 1000 ? 'bad' : ''}">${l.records === null ? '—' : num(l.records)}</td></tr>`,
    )
    .join('');
  const features = h.features.map((f) => `${esc(f.pair)} ${duration(f.stalenessMs)}`).join(', ') || '—';
  const alerts = h.alerts.length
    ? `<ul class="alerts">${h.alerts.map((a) => `<li class="${a.severity}">${esc(a.rule)}: ${esc(a.message)} <small>since ${utc(a.startsAt)}</small></li>`).join('')}</ul>`
    : '<p class="good" data-state="no-alerts">no active alerts</p>';
  return `
  <div class="health">
    <table><caption>last message per topic</caption><tbody>${topics}</tbody></table>
    <table><caption>consumer lag (records)</caption><tbody>${lags}</tbody></table>
    <dl>
      <dt>dead letters, last hour</dt><dd class="${h.deadLettersLastHour > 0 ? 'bad' : ''}">${num(h.deadLettersLastHour)}</dd>
      <dt>feature staleness${h.clockKind === 'event' ? ' (replay clock)' : ''}</dt><dd>${features}</dd>
      <dt>prediction latency p50 / p99</dt><dd>${duration(h.predictionLatencyMs.p50)} / ${duration(h.predictionLatencyMs.p99)} (${num(h.predictionLatencyMs.n)} predictions)</dd>
    </dl>
    <h3>Alerts</h3>${alerts}
  </div>`;
}
