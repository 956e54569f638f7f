import {
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type LineData,
  LineSeries,
  LineStyle,
  MismatchDirection,
  type SeriesMarker,
  TickMarkType,
  type Time,
  type UTCTimestamp,
  type WhitespaceData,
} from 'lightweight-charts';
import type { Candle, ModelHistory, Prediction, PredictionError } from './types.ts';

/**
 * The two charts (TradingView Lightweight Charts™, Apache-2.0; its attribution logo is kept on): the market with the
 * forecasts drawn at their target time, and the errors over time against persistence's. Every series keeps at most
 * `maxPoints` (the visible window): live updates never grow memory beyond it.
 */
const sec = (ms: number) => (ms / 1000) as UTCTimestamp;
const MARKED_VERDICTS = 2 * 1440;
/**
 * The most minutes of one gap put on the time axis (a week, what a chart keeps); a longer one is broken all the same,
 * its rest left off the axis.
 */
const MAX_BLANK_MINUTES = 7 * 1440;

/** The colour of a line's segment that is not drawn: from the last point before a gap to the first after it. */
const HIDDEN = 'transparent';

/** The minutes strictly between two drawn times (seconds) as blanks: a time with no value, the library's whitespace. */
function blanksBetween(from: number, to: number): WhitespaceData<Time>[] {
  const out: WhitespaceData<Time>[] = [];
  for (let t = from + 60, n = 0; t < to && n < MAX_BLANK_MINUTES; t += 60, n++)
    out.push({ time: t as UTCTimestamp });
  return out;
}

/**
 * Points in time order with each minute they skip drawn as a gap. The chart library puts only the times it is given
 * on its axis and joins a line's consecutive points whatever lies between (whitespace does not break a line:
 * tradingview/lightweight-charts#699): a minute with no candle, forecast or verdict — the pipeline or the predictor
 * down, a prediction unscorable — was drawn as a straight line from the point before to the point after, and on the
 * error chart took no room at all. So each skipped minute is a blank (on the axis, taking its room) and, on a line
 * (`line`), the point before the gap is given the hidden colour: the library draws the segment after a point in that
 * point's colour.
 */
function withGaps<T extends { time: UTCTimestamp }>(
  points: readonly T[],
  line = false,
): (T | WhitespaceData<Time>)[] {
  const out: (T | WhitespaceData<Time>)[] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i]!;
    const next = points[i + 1];
    const gap = next !== undefined && next.time - p.time > 60;
    out.push(gap && line ? { ...p, color: HIDDEN } : p);
    if (gap) out.push(...blanksBetween(p.time, next.time));
  }
  return out;
}

/**
 * Live, before a point at `t` (seconds) is added after a series' newest: the gap between them, if any, made as
 * `withGaps` makes it (the minutes blank; on a line, the newest point's segment onward hidden).
 */
function gapBefore(series: ISeriesApi<'Line'> | ISeriesApi<'Candlestick'>, t: number, line: boolean): void {
  const newest = series.dataByIndex(Number.MAX_SAFE_INTEGER, MismatchDirection.NearestLeft);
  if (newest === null || t - (newest.time as number) <= 60) return;
  if (line) (series as ISeriesApi<'Line'>).update({ ...(newest as LineData<Time>), color: HIDDEN });
  for (const blank of blanksBetween(newest.time as number, t)) series.update(blank);
}

/**
 * A series as drawn (tests read it back): each point's time in ms, its value (a candle's close), and whether the line
 * from it to the next point is hidden (a gap).
 */
function drawnPoints(series: ISeriesApi<'Line'> | ISeriesApi<'Candlestick'>) {
  return series.data().map((d) => {
    const x = d as { time: number; value?: number; close?: number; color?: string };
    return { t: x.time * 1000, v: x.value ?? x.close ?? null, hidden: x.color === HIDDEN };
  });
}

/** Whether each time (ms) is on a chart's time axis (tests read it back). */
function onAxis(chart: IChartApi, times: readonly number[]): boolean[] {
  return times.map((t) => chart.timeScale().timeToIndex(sec(t), false) !== null);
}

function themeColours() {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string) => css.getPropertyValue(name).trim();
  return {
    text: v('--text'),
    grid: v('--grid'),
    up: v('--up'),
    down: v('--down'),
    forecast: v('--forecast'),
    band: v('--band'),
    hit: v('--up'),
    miss: v('--down'),
    tie: v('--muted'),
    persistence: v('--muted'),
  };
}

/**
 * A tick of the time axis, in UTC and in the form the crosshair's label and the panels use (ISO: `HH:MM`, `MM-DD` at a
 * day's start, `YYYY-MM`, `YYYY`). The library's own formats the UTC time as a local one (`new Date(y, m, d, h, min)`,
 * then `toLocaleString` in the browser's language): in a time zone whose clocks went forward that night, the hour that
 * does not exist there (02:00–03:00 in New York on 2026-03-08) was labelled an hour later — two ticks read 03:00 —
 * and under another language the digits were that language's (Arabic-Indic with `--lang=ar`), beside a crosshair
 * label and panels in ASCII. Times are numbers here (UTC timestamps in seconds).
 */
function utcTick(time: Time, type: TickMarkType): string {
  const iso = new Date((time as number) * 1000).toISOString();
  switch (type) {
    case TickMarkType.Year:
      return iso.slice(0, 4);
    case TickMarkType.Month:
      return iso.slice(0, 7);
    case TickMarkType.DayOfMonth:
      return iso.slice(5, 10);
    case TickMarkType.Time:
      return iso.slice(11, 16);
    default:
      return iso.slice(11, 19);
  }
}

function baseChart(el: HTMLElement): IChartApi {
  const c = themeColours();
  return createChart(el, {
    autoSize: true,
    layout: {
      background: { type: ColorType.Solid, color: 'transparent' },
      textColor: c.text,
      attributionLogo: true,
    },
    grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
    timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 8, tickMarkFormatter: utcTick },
    localization: {
      timeFormatter: (t: number) => `${new Date(t * 1000).toISOString().slice(5, 16).replace('T', ' ')} UTC`,
    },
  });
}

export class MarketChart {
  readonly chart: IChartApi;
  private readonly candles: ISeriesApi<'Candlestick'>;
  private readonly forecast: ISeriesApi<'Line'>;
  private readonly p10: ISeriesApi<'Line'>;
  private readonly p90: ISeriesApi<'Line'>;
  private readonly forecastMarkers: ISeriesMarkersPluginApi<Time>;
  private readonly modelMarkers: ISeriesMarkersPluginApi<Time>;
  private readonly maxPoints: number;
  /** What is drawn, by time (seconds): the page's own record, read back by tests. */
  readonly candleData = new Map<number, Candle>();
  readonly predictionData = new Map<number, Prediction>();
  /**
   * Scored verdicts by target time, then by model version: after a rollback a minute has the verdicts of two versions,
   * and the dot is the one of the forecast drawn there (`verdictAt`), not whichever arrived last.
   */
  readonly verdicts = new Map<number, Map<number, PredictionError>>();
  /**
   * The other versions' predictions at a target time that has several (`predictionData` holds the one drawn): after
   * a rollback the store has the rolled-back version's and the champion's for the same minutes, and two predictors
   * with different champions (a rollout) write both. Kept so that a change of champion can redraw those minutes.
   */
  private readonly otherVersions = new Map<number, Prediction[]>();
  /** The champion's version (`/v1/model`), undefined while not known or when there is none. */
  private champion: number | undefined;
  private champions: ModelHistory['changes'] = [];

  constructor(el: HTMLElement, maxPoints: number) {
    this.maxPoints = maxPoints;
    const c = themeColours();
    this.chart = baseChart(el);
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: c.up,
      downColor: c.down,
      borderVisible: false,
      wickUpColor: c.up,
      wickDownColor: c.down,
    });
    this.forecast = this.chart.addSeries(LineSeries, { color: c.forecast, lineWidth: 2, title: 'forecast' });
    this.p10 = this.chart.addSeries(LineSeries, {
      color: c.band,
      lineWidth: 1,
      lineStyle: LineStyle.Dashed,
      title: 'p10',
      lastValueVisible: false,
    });
    this.p90 = this.chart.addSeries(LineSeries, {
      color: c.band,
      lineWidth: 1,
      lineStyle: LineStyle.Dashed,
      title: 'p90',
      lastValueVisible: false,
    });
    this.forecastMarkers = createSeriesMarkers(this.forecast, []);
    this.modelMarkers = createSeriesMarkers(this.candles, []);
  }

  setAll(
    candles: readonly Candle[],
    predictions: readonly Prediction[],
    errors: readonly PredictionError[],
  ): void {
    this.candleData.clear();
    this.predictionData.clear();
    this.otherVersions.clear();
    this.verdicts.clear();
    for (const c of candles) this.candleData.set(sec(c.windowEnd), c);
    for (const p of predictions) this.keepPrediction(p);
    for (const e of errors) this.keepVerdict(e);
    this.trim();
    this.redraw();
  }

  /**
   * Keeps a prediction; at a target time with several versions, draws the champion's (`preferred`). Returns whether
   * what is drawn at that time changed.
   */
  private keepPrediction(p: Prediction): boolean {
    const t = sec(p.targetTs);
    const had = this.predictionData.get(t);
    if (had === undefined || had.modelVersion === p.modelVersion) {
      this.predictionData.set(t, p);
      return true;
    }
    const all = [had, ...(this.otherVersions.get(t) ?? [])].filter((x) => x.modelVersion !== p.modelVersion);
    all.push(p);
    return this.pick(t, all) !== had;
  }

  /** Draws the preferred of a target time's versions and keeps the others aside; returns the one drawn. */
  private pick(t: number, all: readonly Prediction[]): Prediction {
    const shown = this.preferred(all);
    this.predictionData.set(t, shown);
    this.otherVersions.set(
      t,
      all.filter((x) => x !== shown),
    );
    return shown;
  }

  /**
   * The champion's prediction, else the highest version's. The highest alone drew the rolled-back version's forecast
   * over the champion's for every minute both had, after a rollback (the one the operator had just turned down).
   */
  private preferred(all: readonly Prediction[]): Prediction {
    const champion = all.find((x) => x.modelVersion === this.champion);
    if (champion !== undefined) return champion;
    return all.reduce((a, b) => (b.modelVersion > a.modelVersion ? b : a));
  }

  /**
   * The champion's version, from `/v1/model` (undefined: none); the minutes with several versions are drawn again.
   * Returns whether the champion changed (the error chart then draws again which version's error each minute shows).
   */
  setChampion(version: number | undefined): boolean {
    if (version === this.champion) return false;
    this.champion = version;
    let changed = false;
    for (const [t, others] of this.otherVersions) {
      const had = this.predictionData.get(t)!;
      if (this.pick(t, [had, ...others]) !== had) changed = true;
    }
    if (changed) this.redraw();
    return true;
  }

  private keepVerdict(e: PredictionError): void {
    if (e.status === 'scored') keepByVersion(this.verdicts, e);
  }

  /**
   * The verdict to show at `t` (seconds) among its versions': the drawn forecast's; where no forecast is drawn (trimmed
   * or not loaded), the one the forecast would be (the champion's, else the highest version's). Undefined while the
   * drawn forecast has no verdict yet, even if another version's has.
   */
  verdictAt(t: number, byVersion = this.verdicts.get(t)): PredictionError | undefined {
    if (byVersion === undefined) return undefined;
    const drawn = this.predictionData.get(t)?.modelVersion;
    if (drawn !== undefined) return byVersion.get(drawn);
    const champion = this.champion === undefined ? undefined : byVersion.get(this.champion);
    return champion ?? byVersion.get(Math.max(...byVersion.keys()));
  }

  private trim(): void {
    for (const m of [this.candleData, this.predictionData, this.verdicts] as Map<number, unknown>[]) {
      if (m.size <= this.maxPoints) continue;
      const keys = [...m.keys()].sort((a, b) => a - b);
      for (const k of keys.slice(0, m.size - this.maxPoints)) m.delete(k);
    }
    for (const t of this.otherVersions.keys()) if (!this.predictionData.has(t)) this.otherVersions.delete(t);
  }

  /** The entries in time order; maps filled in time order (the usual case) need no sort. */
  private sorted<T>(m: Map<number, T>): [number, T][] {
    const out = [...m];
    for (let i = 1; i < out.length; i++)
      if (out[i]![0] < out[i - 1]![0]) return out.sort((a, b) => a[0] - b[0]);
    return out;
  }

  private redraw(): void {
    this.candles.setData(
      withGaps(
        this.sorted(this.candleData).map(([t, c]) => ({
          time: t as UTCTimestamp,
          open: c.open,
          high: c.high,
          low: c.low,
          close: c.close,
        })),
      ),
    );
    const ps = this.sorted(this.predictionData);
    this.forecast.setData(
      withGaps(
        ps.map(([t, p]) => ({ time: t as UTCTimestamp, value: p.predictedClose })),
        true,
      ),
    );
    this.p10.setData(
      withGaps(
        ps.map(([t, p]) => ({ time: t as UTCTimestamp, value: p.p10 })),
        true,
      ),
    );
    this.p90.setData(
      withGaps(
        ps.map(([t, p]) => ({ time: t as UTCTimestamp, value: p.p90 })),
        true,
      ),
    );
    this.drawVerdicts();
    this.drawChampions();
  }

  private drawVerdicts(): void {
    const c = themeColours();
    const markers: SeriesMarker<Time>[] = [];
    // The last two days of verdicts are dotted (older dots merge into a line at the zoom that shows them).
    const all = this.sorted(this.verdicts);
    for (const [t, byVersion] of all.slice(-MARKED_VERDICTS)) {
      if (!this.predictionData.has(t)) continue;
      const e = this.verdictAt(t, byVersion);
      if (e === undefined) continue;
      const colour = e.directionHit === null ? c.tie : e.directionHit ? c.hit : c.miss;
      markers.push({ time: t as UTCTimestamp, position: 'inBar', shape: 'circle', color: colour, size: 0.5 });
    }
    this.forecastMarkers.setMarkers(markers);
  }

  setChampionChanges(changes: ModelHistory['changes']): void {
    // Only changes with a time are kept: one without would make every later redraw throw.
    this.champions = changes.filter((ch) => Number.isFinite(ch?.at));
    this.drawChampions();
  }

  private drawChampions(): void {
    const times = [...this.candleData.keys()];
    if (times.length === 0) return;
    const first = Math.min(...times);
    const last = Math.max(...times);
    const markers: SeriesMarker<Time>[] = this.champions
      .filter((ch) => sec(ch.at) >= first && sec(ch.at) <= last)
      .map((ch) => ({
        time: (Math.floor(sec(ch.at) / 60) * 60) as UTCTimestamp,
        position: 'aboveBar',
        shape: 'arrowDown',
        color: themeColours().forecast,
        text:
          ch.version === null
            ? 'no champion'
            : `v${ch.version}${/rollback/i.test(ch.reason) ? ' (rollback)' : ''}`,
      }));
    this.modelMarkers.setMarkers(markers);
  }

  /** A series as drawn (`drawnPoints`), and which times are on the axis: tests read them back. */
  drawn(series: 'candles' | 'forecast' | 'p10' | 'p90') {
    return drawnPoints(series === 'candles' ? this.candles : this[series]);
  }
  onAxis(times: readonly number[]): boolean[] {
    return onAxis(this.chart, times);
  }

  addCandle(c: Candle): void {
    const t = sec(c.windowEnd);
    const last = Math.max(0, ...this.candleData.keys());
    this.candleData.set(t, c);
    if (t >= last) {
      gapBefore(this.candles, t, false);
      this.candles.update({
        time: t as UTCTimestamp,
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
      });
    } else this.redraw();
    this.trimLive();
  }

  /** Returns whether the forecast drawn at its target time changed (the error chart then shows that one's error). */
  addPrediction(p: Prediction): boolean {
    const t = sec(p.targetTs);
    const last = Math.max(0, ...this.predictionData.keys());
    const before = this.predictionData.get(t);
    if (!this.keepPrediction(p)) return false;
    const p2 = this.predictionData.get(t)!;
    if (t >= last) {
      for (const line of [this.forecast, this.p10, this.p90]) gapBefore(line, t, true);
      this.forecast.update({ time: t as UTCTimestamp, value: p2.predictedClose });
      this.p10.update({ time: t as UTCTimestamp, value: p2.p10 });
      this.p90.update({ time: t as UTCTimestamp, value: p2.p90 });
      // The dot of a minute whose drawn version changed is the new version's (or none yet).
      if (before !== undefined && before.modelVersion !== p2.modelVersion) this.drawVerdicts();
    } else this.redraw();
    this.trimLive();
    return before !== undefined && before.modelVersion !== p2.modelVersion;
  }

  addVerdict(e: PredictionError): void {
    this.keepVerdict(e);
    this.drawVerdicts();
  }

  /** Trims in steps (a full redraw per update would cost more than it saves). */
  private trimLive(): void {
    if (this.candleData.size > this.maxPoints * 1.05 || this.predictionData.size > this.maxPoints * 1.05) {
      this.trim();
      this.redraw();
    }
  }
}

export class ErrorChart {
  readonly chart: IChartApi;
  private readonly model: ISeriesApi<'Line'>;
  private readonly persistence: ISeriesApi<'Line'>;
  /** Scored verdicts by target time, then version; the one drawn at a minute is `pick`'s (the market chart's). */
  private readonly data = new Map<number, Map<number, PredictionError>>();
  private readonly maxPoints: number;
  private readonly pick: (t: number, byVersion: Map<number, PredictionError>) => PredictionError | undefined;

  /** `pick`: which version's verdict to draw at a minute, the one of the forecast the market chart draws. */
  constructor(
    el: HTMLElement,
    maxPoints: number,
    pick: (t: number, byVersion: Map<number, PredictionError>) => PredictionError | undefined,
  ) {
    this.maxPoints = maxPoints;
    this.pick = pick;
    const c = themeColours();
    this.chart = baseChart(el);
    this.model = this.chart.addSeries(LineSeries, {
      color: c.forecast,
      lineWidth: 1,
      title: '|error| model',
    });
    this.persistence = this.chart.addSeries(LineSeries, {
      color: c.persistence,
      lineWidth: 1,
      title: '|error| persistence',
    });
  }

  setAll(errors: readonly PredictionError[]): void {
    this.data.clear();
    for (const e of errors) if (e.status === 'scored') keepByVersion(this.data, e);
    this.redraw();
  }

  /** The error drawn at a target time (seconds), if any. */
  errorAt(t: number): PredictionError | undefined {
    const byVersion = this.data.get(t);
    return byVersion === undefined ? undefined : this.pick(t, byVersion);
  }

  add(e: PredictionError): void {
    if (e.status !== 'scored') return;
    const t = sec(e.targetTs);
    const last = Math.max(0, ...this.data.keys());
    const before = this.errorAt(t);
    keepByVersion(this.data, e);
    if (this.errorAt(t) === before) return;
    if (t >= last && before === undefined && this.data.size <= this.maxPoints * 1.05) {
      gapBefore(this.model, t, true);
      gapBefore(this.persistence, t, true);
      this.model.update({ time: t as UTCTimestamp, value: e.absError! });
      this.persistence.update({ time: t as UTCTimestamp, value: e.persistenceAbsError! });
    } else this.redraw();
  }

  /** The model's error line as drawn (`drawnPoints`), and which times are on the axis: tests read them back. */
  drawn() {
    return drawnPoints(this.model);
  }
  onAxis(times: readonly number[]): boolean[] {
    return onAxis(this.chart, times);
  }

  /** Draws everything again: also when the market chart changed which version's forecast a minute shows. */
  redraw(): void {
    const keys = [...this.data.keys()].sort((a, b) => a - b);
    for (const k of keys.slice(0, Math.max(0, keys.length - this.maxPoints))) this.data.delete(k);
    const rows: [number, PredictionError][] = [];
    for (const t of [...this.data.keys()].sort((a, b) => a - b)) {
      const e = this.errorAt(t);
      if (e !== undefined) rows.push([t, e]);
    }
    this.model.setData(
      withGaps(
        rows.map(([t, e]) => ({ time: t as UTCTimestamp, value: e.absError! })),
        true,
      ),
    );
    this.persistence.setData(
      withGaps(
        rows.map(([t, e]) => ({ time: t as UTCTimestamp, value: e.persistenceAbsError! })),
        true,
      ),
    );
  }
}

/** Keeps a verdict under its target time (seconds) and version; a later one of the same version replaces it. */
function keepByVersion(m: Map<number, Map<number, PredictionError>>, e: PredictionError): void {
  const t = sec(e.targetTs);
  const byVersion = m.get(t) ?? new Map<number, PredictionError>();
  byVersion.set(e.modelVersion, e);
  m.set(t, byVersion);
}
