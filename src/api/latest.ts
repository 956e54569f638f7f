import type { PredictionsStore } from '../inference/predictions-store.ts';
import type { Bus } from '../runtime/bus.ts';
import { pairToUrl } from '../schemas/common.ts';
import type { Prediction } from '../schemas/prediction.ts';
import { topics } from '../schemas/topics.ts';
import { type Entry, Feed, type FeedOptions } from './feed.ts';

export type { Entry } from './feed.ts';

export function predictionKey(p: Prediction): string {
  return `${p.pair}|${p.windowEnd}|${p.modelVersion}`;
}

export interface LatestStartOptions {
  bus: Bus;
  store: PredictionsStore;
  /** Pairs read from the store on a cold start (canonical, `BTC/USD`). */
  pairs: readonly string[];
  /** Consumer group; default unique per instance (every API instance must see every prediction). */
  group?: string;
}

/**
 * The API's view of the `predictions` topic (a `Feed`): the latest prediction per pair — its JSON body serialised
 * once for `GET /v1/predictions/latest`, served without I/O — and a ring of recent ones per pair (WebSocket resume).
 * Newest wins for `latest`: the greater windowEnd, then the later createdAt.
 */
export class LatestPredictions extends Feed<Prediction> {
  private store: PredictionsStore | undefined;
  /** `BTC-USD` → the latest prediction's JSON body. */
  private readonly bodies = new Map<string, Buffer>();

  constructor(options: FeedOptions = {}, store?: PredictionsStore) {
    super(
      {
        channel: 'predictions',
        frameType: 'prediction',
        topic: topics.predictions,
        key: predictionKey,
        tiebreak: (a, b) => a.modelVersion - b.modelVersion,
        newer: (a, b) =>
          a.windowEnd > b.windowEnd || (a.windowEnd === b.windowEnd && a.createdAt >= b.createdAt),
        history: (pair, from, to, opts) => {
          if (this.store === undefined) return Promise.resolve([]);
          return this.store.history(pair, from, to, opts);
        },
        latestInStore: (pair) => this.store?.latest(pair) ?? Promise.resolve(undefined),
      },
      options,
    );
    this.store = store;
  }

  /** The store that older predictions are read from (set by `start`, or by the WebSocket hub's owner). */
  useStore(store: PredictionsStore): void {
    this.store = store;
  }

  override start(opts: LatestStartOptions): Promise<void> {
    this.store = opts.store;
    return super.start(opts);
  }

  protected override onLatest(e: Entry<Prediction>): void {
    this.bodies.set(pairToUrl(e.p.pair), Buffer.from(JSON.stringify(e.p)));
  }

  /** The latest prediction's JSON body for a URL pair (`BTC-USD`), or undefined. */
  bodyFor(urlPair: string): Buffer | undefined {
    return this.bodies.get(urlPair);
  }

  /** Calls `fn` for every new prediction; returns the unsubscribe function. */
  onPrediction(fn: (e: Entry<Prediction>) => void): () => void {
    return this.onRecord(fn);
  }
}
