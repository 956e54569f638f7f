import type { Bus, Subscription } from '../runtime/bus.ts';
import { topics } from '../runtime/topic.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import type { FeatureSetDefinition, FeatureStore } from './store/store.ts';
import { FEATURE_COLUMNS, FEATURE_SET } from './technical.ts';

export const TECHNICAL_SET: FeatureSetDefinition = {
  ...FEATURE_SET,
  columns: FEATURE_COLUMNS,
  source: 'candles 1m → src/features/technical.ts (trading-signals)',
};

/**
 * `features` topic → feature store (offline history + online latest). The store write is idempotent and the
 * offsets are committed after it, so a crash re-writes at most a batch, never loses one.
 */
export class FeatureWriter {
  readonly stats = { written: 0, skipped: 0 };
  private readonly bus: Bus;
  private readonly store: FeatureStore;
  private subscription: Subscription | undefined;

  private readonly group: string;

  constructor(bus: Bus, store: FeatureStore, group = 'feature-writer') {
    this.bus = bus;
    this.store = store;
    this.group = group;
  }

  async start(): Promise<void> {
    await this.store.migrate(TECHNICAL_SET);
    this.subscription = await this.bus.subscribe<FeatureVectorRecord>({
      topic: topics.features,
      group: this.group,
      service: 'feature-writer',
      from: 'earliest',
      handle: async (batch) => {
        const mine = batch.records
          .map((r) => r.value)
          .filter(
            (v) => v.featureSet === TECHNICAL_SET.name && v.featureSetVersion === TECHNICAL_SET.version,
          );
        this.stats.skipped += batch.records.length - mine.length;
        await this.store.write(TECHNICAL_SET, mine);
        this.stats.written += mine.length;
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
