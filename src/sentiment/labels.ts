/** The three sentiment classes every dataset and backend is mapped to. */
export const LABELS = ['negative', 'neutral', 'positive'] as const;
export type Label = (typeof LABELS)[number];

export interface Scored {
  /** In [-1, 1]. */
  score: number;
  label: Label;
}

export interface SentimentBackend {
  readonly name: string;
  score(text: string): Promise<Scored> | Scored;
}
