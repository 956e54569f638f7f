import { secret, setting } from '../config/env.ts';
import { CryptoPanicSource } from '../news/cryptopanic.ts';
import { NewsService } from '../news/news-service.ts';
import { DEFAULT_FEEDS, RssSource } from '../news/rss.ts';
import type { NewsSource } from '../news/source.ts';
import type { Bus } from '../runtime/bus.ts';
import { type BackendFlags, createBackend } from '../sentiment/backends.ts';
import type { SentimentBackend } from '../sentiment/labels.ts';
import { LexiconBackend } from '../sentiment/lexicon.ts';
import { NewsSignalService } from '../sentiment/news-signal-service.ts';
import { SentimentScorer } from '../sentiment/scorer.ts';

/**
 * The news half of the feature pipelines, assembled on any bus: sources → `news` (deduplicated) → sentiment →
 * `news.signals`. The feature writer, started with `news: true`, turns the signals into the `news_sentiment` set.
 */
export interface NewsPipeline {
  readonly items: NewsService;
  readonly signals: NewsSignalService;
  readonly scorer: SentimentScorer;
  /** The backend actually in use, and why it is not the one asked for (a missing model, say). */
  readonly backend: string;
  readonly note?: string;
  /** Resolves when finite sources (none in a candle replay, which publishes news itself) are exhausted. */
  readonly finished: Promise<void>;
  stop(): Promise<void>;
}

/**
 * The live sources: the RSS feeds (`CRYPTOCAST_NEWS_FEEDS`, comma separated, or the documented defaults) and
 * CryptoPanic when `CRYPTOPANIC_TOKEN` is set (secrets only ever come from the environment).
 */
export function liveNewsSources(feedsText?: string): NewsSource[] {
  const urls =
    feedsText === undefined
      ? (setting('CRYPTOCAST_NEWS_FEEDS') ?? [])
      : feedsText
          .split(',')
          .map((u) => u.trim())
          .filter(Boolean);
  const feeds = urls.map((url) => ({ url }));
  const sources: NewsSource[] = [new RssSource({ feeds: feeds.length > 0 ? feeds : DEFAULT_FEEDS })];
  const token = secret('CRYPTOPANIC_TOKEN');
  if (token) sources.push(new CryptoPanicSource({ token, baseUrl: setting('CRYPTOCAST_CRYPTOPANIC_URL') }));
  return sources;
}

/**
 * The backend asked for, or the lexicon with the reason when it cannot start (no model installed, say): a
 * missing model costs sentiment quality, never the run. `warm`: load it now (news will come) rather than at the first
 * item.
 */
async function backendOrLexicon(
  flags: BackendFlags,
  warm: boolean,
  create: (flags: BackendFlags) => SentimentBackend,
): Promise<{ backend: SentimentBackend; note?: string }> {
  try {
    const backend = create(flags);
    if (warm) await backend.warmUp?.();
    return { backend };
  } catch (err) {
    return {
      backend: new LexiconBackend(),
      note: `sentiment backend "${flags.backend ?? 'local'}" unavailable (${(err as Error).message.split('\n')[0]}); scoring with the lexicon`,
    };
  }
}

export async function startNewsPipeline(args: {
  bus: Bus;
  sources: readonly NewsSource[];
  backend: BackendFlags;
  /** Items that waited longer than this on `news` are scored by the lexicon (counted as `degraded`). */
  maxLagMs: number;
  /** What the wait is measured on: `event` for a replay (the wait a live run would have had), `wall` live. */
  clock?: 'wall' | 'event';
  cacheFile?: string;
  /** The stop: ends the news sources and the sentiment model's call in flight (the lexicon scores what is left). */
  signal: AbortSignal;
  /**
   * Whether news can come at all (live feeds, a recording of the replayed months). Without any, the model is not
   * loaded at start: the default replay (trade recordings, which have no news) took 4.0–4.9 s, of which about 3 s
   * loading the LLM for nothing (1.3–1.5 s with --no-news). An item that comes anyway loads it then: the scorer warms
   * its backend at the first item.
   */
  newsExpected?: boolean;
  /** The backend's factory (tests give a fake one). */
  createBackend?: (flags: BackendFlags) => SentimentBackend;
}): Promise<NewsPipeline> {
  const { backend, note } = await backendOrLexicon(
    args.backend,
    args.newsExpected ?? true,
    args.createBackend ?? createBackend,
  );
  const scorer = new SentimentScorer({
    primary: backend,
    // The stop also ends the model call in flight (`run` stopped within 20 s, the scorer's deadline, before).
    signal: args.signal,
    ...(args.cacheFile ? { cacheFile: args.cacheFile } : {}),
  });
  const signals = new NewsSignalService(args.bus, scorer, {
    maxLagMs: args.maxLagMs,
    ...(args.clock ? { clock: args.clock } : {}),
  });
  await signals.start();
  const items = new NewsService(args.bus);
  const finished = items.run(args.sources, args.signal);
  // In one process the market path goes on without news: a failed source was logged by the service; `stop` awaits it.
  finished.catch(() => {});
  return {
    items,
    signals,
    scorer,
    backend: backend.name,
    ...(note ? { note } : {}),
    finished,
    stop: async () => {
      await finished.catch(() => {});
      await signals.stop();
      await scorer.close();
    },
  };
}
