import type { NewsItem } from '../schemas/news.ts';
import type { NewsSignal } from '../schemas/news-signal.ts';
import type { SentimentScorer } from './scorer.ts';

/** The text scored for a news item: its title and lead. */
export const newsText = (item: NewsItem): string =>
  item.summary ? `${item.title}. ${item.summary}` : item.title;

/**
 * One signal per coin a news item mentions (the article's sentiment, for each coin it concerns). `availableAt` is
 * the fetch time plus the time the item waited in the pipeline (`waitedMs`: from the news service's hand-over, publish
 * retries included, to the scorer) plus the time the scoring took (both measured; for a cached answer, the time the
 * model took to make it), so neither a live run nor a replay uses a signal before it could exist.
 * Throws SentimentError('bad-input') when the item has no text to score.
 */
export async function signalsFor(
  item: NewsItem,
  scorer: SentimentScorer,
  opts: { forceBaseline?: string; waitedMs?: number; signal?: AbortSignal } = {},
): Promise<NewsSignal[]> {
  if (item.coins.length === 0) return [];
  const t0 = performance.now();
  const s = await scorer.score(newsText(item), {
    ...(opts.forceBaseline ? { forceBaseline: opts.forceBaseline } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  // A cached answer counts the time the model took to make it: a signal is never dated before a model run on this
  // text, started at the fetch, could have ended (a replay run again from the cache dated its signals at the fetch).
  const tookMs = Math.max(Math.ceil(performance.now() - t0), s.computeMs ?? 0);
  const reason = s.fallback ? `Baseline used (${s.fallback.slice(0, 200)}): ${s.reason}` : s.reason;
  return item.coins.map((coin) => ({
    v: 1 as const,
    newsId: item.id,
    coin,
    score: Math.max(-1, Math.min(1, s.score)),
    label: s.label,
    confidence: Math.max(0, Math.min(1, s.confidence)),
    reason: reason.slice(0, 500),
    model: s.model,
    promptVersion: s.promptVersion,
    baseline: s.baseline,
    publishedAt: item.publishedAt,
    availableAt: item.fetchedAt + Math.max(0, Math.round(opts.waitedMs ?? 0)) + tookMs,
  }));
}
