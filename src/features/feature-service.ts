import { log } from '../core/log.ts';
import type { Bus, Subscription } from '../runtime/bus.ts';
import { topics } from '../runtime/topic.ts';
import type { Candle } from '../schemas/candle.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import { check, FEATURE_SET, type FeatureVector, TechnicalFeatures } from './technical.ts';

/**
 * The feature stage as a service: `candles` → technical features → `features`. The same `TechnicalFeatures`
 * code as `cryptocast features` (batch), fed one candle at a time. Impossible candles go to `dlq` and never
 * touch indicator state. Revised candles (late-trade policy `revise`) are not fed again: features are computed
 * once per closed minute, from its first emission.
 */
export class FeatureService {
  readonly stats = { candles: 0, vectors: 0, ready: 0, rejected: 0 };
  private readonly bus: Bus;
  private readonly engines = new Map<number, TechnicalFeatures>();
  private subscription: Subscription | undefined;
  private readonly group: string;
  onVectors?: (vs: readonly FeatureVectorRecord[]) => void;

  constructor(bus: Bus, group = 'features') {
    this.bus = bus;
    this.group = group;
  }

  async start(): Promise<void> {
    await this.bus.ensureTopics([topics.candles, topics.features, topics.dlq]);
    this.subscription = await this.bus.subscribe<Candle>({
      topic: topics.candles,
      group: this.group,
      service: 'features',
      from: 'earliest',
      onAssign: (ps) => {
        for (const p of ps) this.engines.set(p, new TechnicalFeatures());
      },
      onRevoke: (ps) => {
        for (const p of ps) this.engines.delete(p);
      },
      handle: async (batch) => {
        let engine = this.engines.get(batch.partition);
        if (engine === undefined) {
          engine = new TechnicalFeatures();
          this.engines.set(batch.partition, engine);
        }
        const out: FeatureVectorRecord[] = [];
        const dead: DeadLetter[] = [];
        for (const r of batch.records) {
          const c = r.value;
          if (c.revision > 0) continue;
          this.stats.candles++;
          const bad = check(c);
          let v: FeatureVector | undefined;
          let reason = bad;
          if (bad === undefined) {
            try {
              v = engine.update(c);
            } catch (err) {
              reason = (err as Error).message;
            }
          }
          if (v === undefined) {
            this.stats.rejected++;
            dead.push(
              deadLetter({
                service: 'features',
                origin: topics.candles.name,
                kind: 'invalid',
                reason: reason!,
                payload: c,
                key: c.pair,
                partition: r.partition,
                offset: r.offset,
              }),
            );
            continue;
          }
          if (v.ready) this.stats.ready++;
          out.push(toRecord(c.exchange, v));
        }
        if (out.length > 0) {
          await this.bus.publish(topics.features, out);
          this.stats.vectors += out.length;
          this.onVectors?.(out);
        }
        if (dead.length > 0) {
          log.warn({ service: 'features', count: dead.length, reason: dead[0]!.reason }, 'candles rejected');
          await this.bus.publish(topics.dlq, dead);
        }
        return undefined;
      },
    });
  }

  async caughtUp(): Promise<void> {
    await this.subscription?.caughtUp();
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}

export function toRecord(exchange: string, v: FeatureVector): FeatureVectorRecord {
  return {
    v: 1,
    featureSet: FEATURE_SET.name,
    featureSetVersion: FEATURE_SET.version,
    exchange,
    pair: v.pair,
    windowStart: v.windowStart,
    windowEnd: v.windowEnd,
    close: v.close,
    ready: v.ready,
    values: v.values,
  };
}
