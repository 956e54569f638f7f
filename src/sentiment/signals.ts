import type { NewsItem } from '../schemas/news.ts';
import type { NewsSignal } from '../schemas/news-signal.ts';
import type { SentimentBackend } from './labels.ts';

/**
 * One signal per coin a news item mentions. The text scored is the title and the lead. `availableAt` is the
 * fetch time plus the time the scoring took (measured), so a replay never uses a signal before it could exist.
 */
export async function signalsFor(
  item: NewsItem,
  backend: SentimentBackend,
  promptVersion = 'lexicon-v1',
): Promise<NewsSignal[]> {
  if (item.coins.length === 0) return [];
  const t0 = performance.now();
  const s = await backend.score(`${item.title}. ${item.summary}`.slice(0, 4_000));
  const tookMs = Math.ceil(performance.now() - t0);
  return item.coins.map((coin) => ({
    v: 1 as const,
    newsId: item.id,
    coin,
    score: Math.max(-1, Math.min(1, s.score)),
    label: s.label,
    confidence: Math.min(1, Math.abs(s.score)),
    reason: `${backend.name}: ${s.label} (${s.score.toFixed(3)})`,
    model: backend.name,
    promptVersion,
    baseline: backend.name.startsWith('lexicon'),
    publishedAt: item.publishedAt,
    availableAt: item.fetchedAt + tookMs,
  }));
}
