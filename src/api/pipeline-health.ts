import type { Bus } from '../runtime/bus.ts';
import type { Topic } from '../runtime/topic.ts';
import { PIPELINE_GROUPS, topics } from '../schemas/topics.ts';
import type { AlertsView } from './alerts-view.ts';
import type { LatestPredictions } from './latest.ts';

export interface TopicHealth {
  topic: string;
  /** When the newest record was appended (wall clock), and how long ago; null when the topic is empty. */
  lastAppendedAt: number | null;
  ageMs: number | null;
}

export interface PipelineHealth {
  at: number;
  clockKind: 'wall' | 'event';
  topics: TopicHealth[];
  consumerLag: { topic: string; group: string; records: number | null }[];
  deadLettersLastHour: number;
  /** Per pair: the newest feature vector's windowEnd and how far behind the stream clock it is. */
  features: { pair: string; windowEnd: number; stalenessMs: number }[];
  /** Over the predictions held in memory (up to a day per pair): candle close → prediction stored. */
  predictionLatencyMs: { p50: number | null; p99: number | null; n: number };
  alerts: ReturnType<AlertsView['list']>;
}

const WATCHED: Topic<unknown>[] = [
  topics.trades,
  topics.candles,
  topics.features,
  topics.predictions,
  topics.predictionErrors,
  topics.news,
  topics.newsSignals,
  topics.alerts,
  topics.dlq,
] as Topic<unknown>[];

const quantile = (xs: number[], q: number) =>
  xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/**
 * The health of every pipeline as the dashboard shows it: the last message per topic and its age, each stage's
 * consumer lag, dead letters of the last hour, feature staleness, prediction latency, active alerts. Read from the bus
 * (tails and group offsets) at most every `cacheMs`, so many dashboards cost one read; and one read at a time: while
 * the broker is away a read waits (Kafka's readTail waits for the broker), so the requests that come meanwhile share
 * it instead of each starting another that would wait too, for the whole outage. A read gives up after
 * `readTimeoutMs`, tails and group lags alike (the API's own deadline answers the request `bus_unavailable` by then);
 * the next request tries again.
 */
/**
 * Records read from each partition of `features` for its pairs' newest vectors: pairs share partitions (four, by the
 * pair's hash), and one vector per partition listed only the pair published last there.
 */
const FEATURES_TAIL = 64;

export class PipelineHealthView {
  private readonly bus: Bus;
  private readonly latest: LatestPredictions;
  private readonly alerts: AlertsView;
  private readonly clockKind: 'wall' | 'event';
  private readonly cacheMs: number;
  private readonly readTimeoutMs: number;
  private cached: { at: number; value: Promise<PipelineHealth> } | undefined;
  /** The read under way, if any: shared by every request until it settles. */
  private reading: Promise<PipelineHealth> | undefined;
  /**
   * The newest feature vector's windowEnd of every pair seen since the start, kept across reads: a pair whose stage
   * stopped while another of its partition went on leaves the tail, and must stay listed, ever staler — it was
   * dropped from the list, the figure that should have said so.
   */
  private readonly newestFeature = new Map<string, number>();

  constructor(o: {
    bus: Bus;
    latest: LatestPredictions;
    alerts: AlertsView;
    clock: 'wall' | 'event';
    cacheMs?: number;
    readTimeoutMs?: number;
  }) {
    this.bus = o.bus;
    this.latest = o.latest;
    this.alerts = o.alerts;
    this.clockKind = o.clock;
    this.cacheMs = o.cacheMs ?? 5_000;
    this.readTimeoutMs = o.readTimeoutMs ?? 10_000;
  }

  get(now = Date.now()): Promise<PipelineHealth> {
    if (this.reading !== undefined) return this.reading;
    if (this.cached === undefined || now - this.cached.at >= this.cacheMs) {
      const value = this.read(now, AbortSignal.timeout(this.readTimeoutMs));
      this.cached = { at: now, value };
      this.reading = value;
      value.then(
        () => {
          this.reading = undefined;
        },
        () => {
          this.reading = undefined;
          this.cached = undefined;
        },
      );
    }
    return this.cached.value;
  }

  private async read(now: number, signal: AbortSignal): Promise<PipelineHealth> {
    const tails = await Promise.all(
      WATCHED.map((t) =>
        this.bus.readTail(t, t === topics.dlq ? 1000 : t === topics.features ? FEATURES_TAIL : 1, { signal }),
      ),
    );
    const topicHealth = WATCHED.map((t, i) => {
      const last = tails[i]!.reduce((m, r) => Math.max(m, r.timestamp), Number.NEGATIVE_INFINITY);
      return Number.isFinite(last)
        ? { topic: t.name, lastAppendedAt: last, ageMs: Math.max(0, now - last) }
        : { topic: t.name, lastAppendedAt: null, ageMs: null };
    });
    const dlq = tails[WATCHED.indexOf(topics.dlq as Topic<unknown>)]!;
    const candles = tails[WATCHED.indexOf(topics.candles as Topic<unknown>)]! as {
      value: { windowEnd: number };
    }[];
    const features = tails[WATCHED.indexOf(topics.features as Topic<unknown>)]! as {
      value: { pair: string; windowEnd: number };
    }[];
    // The stream's clock: the wall live; on a replay, the newest candle (a recording of last year is not stale).
    const clock =
      this.clockKind === 'wall'
        ? now
        : candles.reduce((m, r) => Math.max(m, r.value.windowEnd), Number.NEGATIVE_INFINITY);
    const newest = this.newestFeature;
    for (const r of features)
      newest.set(r.value.pair, Math.max(newest.get(r.value.pair) ?? 0, r.value.windowEnd));
    const latencies: number[] = [];
    for (const pair of this.latest.knownPairs())
      for (const e of this.latest.ring(pair)) latencies.push(e.p.latencyMs);
    const lags = await Promise.all(
      PIPELINE_GROUPS.map(async ({ topic, group }) => ({
        topic: topic.name,
        group,
        records: (await this.bus.groupLag(topic, group, { signal }).catch(() => undefined)) ?? null,
      })),
    );
    // Past the deadline the lags are unknown because the broker did not answer in time: the read gives up as a tail
    // read would, rather than answer with every lag missing.
    signal.throwIfAborted();
    return {
      at: now,
      clockKind: this.clockKind,
      topics: topicHealth,
      consumerLag: lags,
      deadLettersLastHour: dlq.filter((r) => r.timestamp > now - 3_600_000).length,
      features: [...newest].map(([pair, windowEnd]) => ({
        pair,
        windowEnd,
        stalenessMs: Number.isFinite(clock) ? Math.max(0, clock - windowEnd) : 0,
      })),
      predictionLatencyMs: {
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        n: latencies.length,
      },
      alerts: this.alerts.list(),
    };
  }
}
