import type { DeadLetter } from '../schemas/dlq.ts';
import type { NewsItem } from '../schemas/news.ts';

/** Where a news source delivers (validated, normalised items) and where its rejects go. */
export interface NewsSink {
  news(items: readonly NewsItem[]): Promise<void> | void;
  reject(dl: DeadLetter): Promise<void> | void;
}

export interface NewsSource {
  readonly name: string;
  /** Until exhausted (recordings) or aborted (feeds). Never throws for a bad item or a failed poll. */
  run(sink: NewsSink, signal: AbortSignal): Promise<void>;
}
