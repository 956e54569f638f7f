import { backoffDelay } from '../../core/retry.ts';
import type { DashboardSeries } from '../series.ts';
import { ApiError, type ChannelName, getJson, Live } from './api.ts';
import { ErrorChart, MarketChart } from './charts.ts';
import { duration, esc, utc } from './format.ts';
import { healthPanel, modelPanel, newsPanel, qualityPanel } from './panels.ts';
import { drawableCandle, drawablePrediction, drawableVerdict } from './records.ts';
import type {
  Candle,
  Model,
  ModelHistory,
  NewsEntry,
  PipelineHealth,
  Prediction,
  PredictionError,
  Quality,
} from './types.ts';

/**
 * The cryptocast dashboard: one page, served by the API, no other server, nothing from outside (assets are the
 * API's own). First paint from the REST history of the last `WINDOW_DAYS`, then live over the WebSocket, resumed after
 * any reconnect without gaps. `window.__cryptocast` exposes what the page shows (tests and benchmarks read it).
 */
const WINDOW_DAYS = 7;
const MAX_POINTS = WINDOW_DAYS * 1440 + 60;
const $ = (id: string) => document.getElementById(id)!;
/** Candles come one a minute: a newest one older than this means the pipeline stopped (or a replay is shown). */
const STALE_AFTER_MS = 3 * 60_000;
/**
 * How often a page with no pair to show asks again: opened while a run warms up (61 minutes of market time before the
 * first prediction) it must show the predictions when they come, not "no predictions yet" until a reload.
 */
const NO_PAIR_RETRY_MS = 10_000;

interface State {
  pair: string;
  status: 'loading' | 'connecting' | 'live' | 'down' | 'retrying' | 'unknown-pair' | 'no-data';
  statusDetail: string;
  since: Record<ChannelName, number | undefined>;
  live: { candles: number; predictions: number; errors: number };
  /** Records from the API the charts could not draw (a missing or non-finite number), per channel. */
  dropped: { candles: number; predictions: number; errors: number };
  firstPaintMs: number | null;
  /** When the first paint was done, on the page's clock (ms since navigation start). */
  paintedAt: number | null;
  /** When every chart was drawn (the error chart follows the first paint). */
  allPaintedAt?: number;
  /** Where the first paint's time went. */
  phases?: Record<string, number>;
  quality: Quality | null;
  /** Whether the newest candle shown is older than STALE_AFTER_MS on the page's clock. */
  stale: boolean;
  /**
   * The API's message when it could not replay a resume (records may be missing), else null: the latest, while any
   * channel's gap is not filled (or, from an API whose error frame names no channel, until a reload).
   */
  gap: string | null;
  /** Per channel, the notice of a gap being filled (asked again with back-off), until it is. */
  gaps: Partial<Record<ChannelName, string>>;
  /** Gaps filled without a reload, per channel. */
  refilled: { candles: number; predictions: number; errors: number };
}

const state: State = {
  pair: '',
  status: 'loading',
  statusDetail: '',
  since: { candles: undefined, predictions: undefined, errors: undefined },
  live: { candles: 0, predictions: 0, errors: 0 },
  dropped: { candles: 0, predictions: 0, errors: 0 },
  firstPaintMs: null,
  paintedAt: null,
  quality: null,
  stale: false,
  gap: null,
  gaps: {},
  refilled: { candles: 0, predictions: 0, errors: 0 },
};
let market: MarketChart | undefined;
let errorChart: ErrorChart | undefined;

declare global {
  interface Window {
    __cryptocast: {
      /** The forecast drawn at a target time (epoch ms), if any. */
      predictionAt(targetTs: number): Prediction | null;
      /** The verdict dotted at a target time (epoch ms): the drawn forecast's version's. */
      verdictAt(targetTs: number): PredictionError | null;
      /** The error the error chart draws at a target time (epoch ms). */
      errorAt(targetTs: number): PredictionError | null;
      /**
       * A series as drawn: each point's time (ms), value (a candle's close), and whether the line from it to the next
       * point is hidden (a gap); `errors` is the model's error line.
       */
      drawn(
        series: 'candles' | 'forecast' | 'p10' | 'p90' | 'errors',
      ): { t: number; v: number | null; hidden: boolean }[];
      /** Whether each time (ms) is on the time axis of the market chart, or of the error chart. */
      onAxis(chart: 'market' | 'errors', times: number[]): boolean[];
      state(): State & {
        candles: number;
        predictions: number;
        verdicts: number;
        lastCandle: number | null;
        lastPrediction: number | null;
      };
    };
  }
}
window.__cryptocast = {
  predictionAt: (targetTs) => market?.predictionData.get(targetTs / 1000) ?? null,
  verdictAt: (targetTs) => market?.verdictAt(targetTs / 1000) ?? null,
  errorAt: (targetTs) => errorChart?.errorAt(targetTs / 1000) ?? null,
  drawn: (series) => (series === 'errors' ? errorChart?.drawn() : market?.drawn(series)) ?? [],
  onAxis: (chart, times) => (chart === 'errors' ? errorChart : market)?.onAxis(times) ?? [],
  state: () => ({
    ...state,
    candles: market?.candleData.size ?? 0,
    predictions: market?.predictionData.size ?? 0,
    verdicts: market?.verdicts.size ?? 0,
    lastCandle: state.since.candles ?? null,
    lastPrediction: state.since.predictions ?? null,
  }),
};

function setStatus(status: State['status'], detail = ''): void {
  state.status = status;
  state.statusDetail = detail;
  const el = $('status');
  el.dataset.status = status;
  el.textContent =
    status === 'live'
      ? 'live'
      : status === 'down'
        ? `API unreachable — ${detail}`
        : status === 'connecting'
          ? 'connecting…'
          : detail || status;
}

/**
 * How old the newest candle is, beside the connection's status: an open socket says nothing of the data (the API up,
 * the pipeline behind it stopped), so data older than STALE_AFTER_MS is marked stale with its time.
 */
function showFreshness(): void {
  const newest = state.since.candles;
  if (newest === undefined) return;
  const age = Date.now() - newest;
  state.stale = age > STALE_AFTER_MS;
  const el = $('freshness');
  el.dataset.stale = String(state.stale);
  el.textContent = state.stale
    ? `stale: newest candle ${utc(newest)} (${duration(age)} ago)`
    : `newest candle ${duration(Math.max(0, age))} ago`;
}

const quoteOf = (pair: string) => pair.split(/[-/]/)[1] ?? '';
const bump = (channel: ChannelName, windowEnd: number) => {
  const s = state.since[channel];
  if (s === undefined || windowEnd > s) state.since[channel] = windowEnd;
};

async function pickPair(): Promise<string | undefined> {
  // A failure goes to the caller, which retries: the API answers 503 while it starts (its stores opening, its feeds
  // filling), and that is not "no predictions yet".
  const ready = await getJson<{ pairs: string[] }>('/v1/ready');
  const known = ready.pairs;
  const select = $('pair') as HTMLSelectElement;
  const asked = new URLSearchParams(location.search).get('pair')?.toUpperCase().replace('/', '-');
  // A pair asked that has no predictions is listed first, as what the page is about: the picker showed the first pair
  // with predictions as if it were shown, and picking from it did nothing (its handler was set only with a pair drawn).
  const listed = asked && !known.includes(asked) ? [asked, ...known] : known;
  // Asked again every 10 s while there is no pair to show: redrawn only when the list changed (an open list would shut).
  if (select.dataset.listed !== listed.join(' ')) {
    select.dataset.listed = listed.join(' ');
    select.innerHTML = listed.map((p) => `<option value="${esc(p)}">${esc(p)}</option>`).join('');
    if (asked) select.value = asked;
  }
  select.onchange = () => {
    location.search = `?pair=${encodeURIComponent(select.value)}`;
  };
  if (known.length === 0) {
    setStatus('no-data', 'no predictions yet');
    $('message').innerHTML =
      `<p class="notice" data-state="no-data">No predictions yet. A run that has just started warms up first (its indicators need 61 minutes of market time): this page shows the predictions when they come (asked every ${NO_PAIR_RETRY_MS / 1000} s). Not running? Start the system (<code>./bin/cryptocast run --serve</code>); with no champion model, train one first (<code>bash scripts/price-model.sh</code>).</p>`;
    return undefined;
  }
  if (asked && !known.includes(asked)) {
    // A pair with candles and no prediction is warming up (or its replay is shorter than the warm-up): not "no data".
    const candles = await getJson<{ items: unknown[] }>(
      `/v1/candles?pair=${encodeURIComponent(asked)}&limit=1`,
    ).catch(() => ({ items: [] }));
    const warming = candles.items.length > 0;
    const links = known.map((p) => `<a href="?pair=${encodeURIComponent(p)}">${esc(p)}</a>`).join(', ');
    const retry = `It is shown here once it has predictions (asked every ${NO_PAIR_RETRY_MS / 1000} s).`;
    setStatus('unknown-pair', warming ? `no predictions of ${asked} yet` : `unknown pair ${asked}`);
    $('message').innerHTML = warming
      ? `<p class="notice" data-state="warming-up"><strong>${esc(asked)}</strong> has candles but no predictions yet: its indicators need 61 minutes of market time before the first (a replay shorter than that never gets one). ${retry} Pairs with predictions: ${links}.</p>`
      : `<p class="notice" data-state="unknown-pair">No data for <strong>${esc(asked)}</strong>. Pairs with predictions: ${links}. ${retry}</p>`;
    return undefined;
  }
  const pair = asked ?? known[0]!;
  select.value = pair;
  return pair;
}

type Series = DashboardSeries;

/** A record the charts cannot draw (see records.ts): dropped, and told on the console. */
function malformed(channel: ChannelName, data: unknown): void {
  state.dropped[channel]++;
  console.warn(`dropped a malformed ${channel} record`, data);
}

/** One request for the first paint: the last `WINDOW_DAYS` of the pair as columns (a fifth of the records' JSON). */
async function firstPaint(pair: string, series: Promise<Series>, t0: number): Promise<void> {
  const s = await series;
  const t1 = performance.now();
  const candles: Candle[] = s.candles.t
    .map((t, i) => ({
      pair,
      windowStart: t - 60_000,
      windowEnd: t,
      open: s.candles.o[i]!,
      high: s.candles.h[i]!,
      low: s.candles.l[i]!,
      close: s.candles.c[i]!,
      volume: 0,
      filled: false,
    }))
    // A null in a column (a NaN stored upstream, a missing value) would stop the chart: that record is left out.
    .filter(drawableCandle);
  const predictions: Prediction[] = s.predictions.t
    .map((t, i) => ({
      pair,
      targetTs: t,
      windowEnd: s.predictions.w[i]!,
      close: 0,
      predictedClose: s.predictions.p[i]!,
      p10: s.predictions.lo[i]!,
      p90: s.predictions.hi[i]!,
      modelName: '',
      modelVersion: s.predictions.v[i]!,
      latencyMs: s.predictions.lat[i]!,
    }))
    .filter(drawablePrediction);
  const errors: PredictionError[] = s.errors.t
    .map((t, i): PredictionError => {
      const hit = s.errors.hit[i];
      return {
        pair,
        targetTs: t,
        windowEnd: s.errors.w[i]!,
        modelVersion: s.errors.v[i]!,
        status: hit === null ? 'unscorable' : 'scored',
        predictedClose: 0,
        actualClose: null,
        error: null,
        absError: s.errors.e[i] ?? null,
        persistenceAbsError: s.errors.pe[i] ?? null,
        directionHit: hit === 1 ? true : hit === 0 ? false : null,
        inBand: null,
        reason: null,
      };
    })
    .filter(drawableVerdict);
  state.dropped.candles += s.candles.t.length - candles.length;
  state.dropped.predictions += s.predictions.t.length - predictions.length;
  state.dropped.errors += s.errors.t.length - errors.length;
  const t2 = performance.now();
  market!.setAll(candles, predictions, errors);
  const t3 = performance.now();
  for (const c of candles) bump('candles', c.windowEnd);
  for (const p of predictions) bump('predictions', p.windowEnd);
  for (const e of errors) bump('errors', e.windowEnd);
  market!.chart.timeScale().fitContent();
  await new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r())));
  state.phases = {
    fetchMs: t1 - t0,
    decodeMs: t2 - t1,
    marketMs: t3 - t2,
    frameMs: performance.now() - t3,
  };
  state.firstPaintMs = performance.now() - t0;
  state.paintedAt = performance.now();
  $('range').textContent = `${utc(s.from)} → ${utc(s.to)}`;
  // The error chart, below the market chart, is drawn right after the first paint.
  errorChart!.setAll(errors);
  await new Promise<void>((r) => requestAnimationFrame(() => r()));
  state.allPaintedAt = performance.now();
}

/**
 * Fills one panel from its API answer. A malformed answer (a missing field, a null where a number belongs) spoils
 * that panel only, and says so: a throw here would stop the other panels and, on the first refresh, the page itself
 * before its WebSocket is opened.
 */
function render(id: string, path: string, html: () => string): void {
  try {
    $(id).innerHTML = html();
    drawnAt[id] = Date.now();
  } catch (err) {
    console.warn(`malformed answer from ${path}`, err);
    $(id).innerHTML =
      `<p class="notice bad" data-state="malformed">Cannot show this: malformed answer from ${esc(path)}.</p>`;
  }
}

/** The status the panels set when none of their requests reached the API (the socket may still be up). */
const PANELS_DOWN = 'panels could not be refreshed';

/** When each panel was last drawn from an answer (the page's clock). */
const drawnAt: Record<string, number> = {};

/**
 * A panel whose source failed (a registry or the transport away, the API down): its last answer stays, marked stale
 * with since when and why — the health panel's ages are the server's, and would otherwise read "12 s ago" for ever —
 * and one that never loaded says it is unavailable instead of staying blank. The next good answer replaces either.
 */
function unavailable(id: string, reason: unknown): void {
  const why = esc(reason instanceof ApiError ? reason.message : 'the API is unreachable');
  const el = $(id);
  const at = drawnAt[id];
  el.querySelector(':scope > [data-state="stale"]')?.remove();
  if (at === undefined)
    el.innerHTML = `<p class="notice bad" data-state="unavailable">Unavailable: ${why} (asked again every 10 s).</p>`;
  else
    el.insertAdjacentHTML(
      'afterbegin',
      `<p class="notice bad" data-state="stale">Stale: not refreshed since ${utc(at)}: ${why}.</p>`,
    );
}

/**
 * The gap notice: the channels whose records may be missing and when each is asked again; gone once all are filled.
 * An error frame that names no channel (an older API) keeps its own notice: only a reload fills that gap.
 */
function showGaps(unnamed?: string): void {
  const el = $('message');
  const lines = Object.values(state.gaps);
  if (unnamed !== undefined)
    el.innerHTML = `<p class="notice bad" data-state="gap">Records may be missing from the charts: ${esc(unnamed)}. Reload the page to fill the gap.</p>`;
  else if (lines.length > 0)
    el.innerHTML = `<p class="notice bad" data-state="gap">${lines.map(esc).join('<br>')}</p>`;
  else {
    el.querySelector('[data-state="gap"]')?.remove();
    state.gap = null;
  }
}

async function refreshPanels(pair: string): Promise<void> {
  const quote = quoteOf(pair);
  const results = await Promise.allSettled([
    getJson<Quality>(`/v1/quality?pair=${pair}`),
    getJson<Model>('/v1/model'),
    getJson<ModelHistory>('/v1/model/history'),
    getJson<{ items: NewsEntry[] }>('/v1/news?limit=30'),
    getJson<PipelineHealth>('/v1/pipeline'),
  ]);
  const [q, m, h, n, p] = results;
  if (q.status === 'fulfilled') {
    state.quality = q.value;
    render('quality', '/v1/quality', () => qualityPanel(q.value, quote));
  } else if (q.reason instanceof ApiError && q.reason.status === 404)
    $('quality').innerHTML =
      `<p class="notice">No matured predictions of ${esc(pair)} yet (each is scored 5 minutes after it is made).</p>`;
  else unavailable('quality', q.reason);
  const model = m.status === 'fulfilled' ? m.value : null;
  // Which version's forecast to draw where several predicted the same minute: the champion's (kept while the
  // registry is away). The error chart shows each minute's error of the forecast drawn, so it follows.
  let championChanged = false;
  if (m.status === 'fulfilled')
    championChanged =
      market?.setChampion(Number.isFinite(m.value?.version) ? m.value.version : undefined) ?? false;
  else if (m.reason instanceof ApiError && m.reason.status === 404)
    championChanged = market?.setChampion(undefined) ?? false;
  if (championChanged) errorChart?.redraw();
  const history = h.status === 'fulfilled' ? h.value : null;
  if (m.status === 'fulfilled' || (m.reason instanceof ApiError && m.reason.status === 404))
    render('model', '/v1/model', () => modelPanel(model, history));
  else unavailable('model', m.reason);
  if (history) {
    try {
      market?.setChampionChanges(history.changes);
    } catch (err) {
      console.warn('malformed answer from /v1/model/history', err);
    }
  }
  if (n.status === 'fulfilled') render('news', '/v1/news', () => newsPanel(n.value.items));
  else unavailable('news', n.reason);
  if (p.status === 'fulfilled') render('health', '/v1/pipeline', () => healthPanel(p.value));
  else unavailable('health', p.reason);
  const down = results.every((r) => r.status === 'rejected' && !(r.reason instanceof ApiError));
  if (down && state.status === 'live') setStatus('down', PANELS_DOWN);
  // Answered again: the 'down' the panels set goes. The socket is still live, or it would have said otherwise
  // (its own close replaces this status).
  else if (!down && state.status === 'down' && state.statusDetail === PANELS_DOWN) setStatus('live');
}

/**
 * `ask()`'s answer (`first`, when already asked), asked again until there is one: the page opened while the API
 * starts (503: its stores opening) or is unreachable says why and when it asks again, jittered like the WebSocket's
 * back-off (every open dashboard retries after the same outage), instead of taking the failure for an answer.
 */
async function untilAnswered<T>(ask: () => Promise<T>, first?: Promise<T>): Promise<T> {
  let asking = first ?? ask();
  for (let attempt = 0; ; attempt++) {
    try {
      return await asking;
    } catch (err) {
      const delay = backoffDelay(attempt, { initialMs: 1_000, maxMs: 30_000 });
      const retry = `retrying in ${Math.ceil(delay / 1000)} s`;
      if (err instanceof ApiError) setStatus('retrying', `${err.message} — ${retry}`);
      else setStatus('down', retry);
      await new Promise((r) => setTimeout(r, delay));
      asking = ask();
    }
  }
}

async function main(): Promise<void> {
  setStatus('loading', 'loading…');
  // With the pair in the URL the data is requested at once, beside the list of pairs.
  const t0 = performance.now();
  const urlPair = new URLSearchParams(location.search).get('pair')?.toUpperCase().replace('/', '-');
  const early = urlPair
    ? getJson<Series>(`/v1/dashboard/series?pair=${urlPair}&days=${WINDOW_DAYS}`)
    : undefined;
  early?.catch(() => {});
  let pair = await untilAnswered(pickPair);
  const waited = pair === undefined;
  // No pair to show yet (a run warming up, a pair not predicted yet): asked again until there is one.
  while (pair === undefined) {
    await new Promise((r) => setTimeout(r, NO_PAIR_RETRY_MS));
    pair = await untilAnswered(pickPair);
  }
  if (waited) {
    $('message').innerHTML = '';
    setStatus('loading', 'loading…');
  }
  state.pair = pair;
  document.title = `${pair} · cryptocast`;
  // The data is on its way while the charts are made.
  const seriesOf = () => getJson<Series>(`/v1/dashboard/series?pair=${pair}&days=${WINDOW_DAYS}`);
  const asked = early && urlPair === pair && !waited ? early : seriesOf();
  market = new MarketChart($('market'), MAX_POINTS);
  const drawnMarket = market;
  errorChart = new ErrorChart($('errors'), MAX_POINTS, (t, byVersion) => drawnMarket.verdictAt(t, byVersion));
  // A store away or an API restarting makes the first paint fail: said, and asked again (one failure must not leave
  // the page without charts and without its WebSocket until a reload).
  const series = Promise.resolve(await untilAnswered(seriesOf, asked));
  await firstPaint(pair, series, t0);
  showFreshness();
  setInterval(showFreshness, 5_000);
  await refreshPanels(pair);
  setInterval(() => void refreshPanels(pair).catch(() => {}), 10_000);
  new Live({
    pair,
    since: () => state.since,
    onStatus: (s, detail) => setStatus(s, detail),
    onServerError: (code, message, refill) => {
      // The API skipped a resume's replay (its store did not answer in time, or the key's rate limit) and went live:
      // the records between the page's newest and the first live one are missing. Live asks that channel again from
      // its old resume point until a replay goes through; an API whose frame names no channel leaves it to a reload.
      if (code !== 'replay_failed' && code !== 'rate_limited') return;
      state.gap = message;
      if (refill === undefined) return showGaps(message);
      state.gaps[refill.channel] =
        `Records may be missing from the ${refill.channel} chart: ${message}. Asking again in ${Math.ceil(refill.retryInMs / 1000)} s.`;
      showGaps();
    },
    onRefilled: (channel) => {
      delete state.gaps[channel];
      state.refilled[channel]++;
      showGaps();
    },
    onRecord: (channel, data) => {
      if (channel === 'candles') {
        if (!drawableCandle(data)) return malformed(channel, data);
        market!.addCandle(data);
        bump('candles', data.windowEnd);
        showFreshness();
      } else if (channel === 'predictions') {
        if (!drawablePrediction(data)) return malformed(channel, data);
        if (market!.addPrediction(data)) errorChart!.redraw();
        bump('predictions', data.windowEnd);
      } else {
        if (!drawableVerdict(data)) return malformed(channel, data);
        market!.addVerdict(data);
        errorChart!.add(data);
        bump('errors', data.windowEnd);
      }
      state.live[channel]++;
    },
  }).start();
}

void main().catch((err) => {
  setStatus('down', (err as Error).message);
});
