/** The three sentiment classes every dataset and backend is mapped to. */
export const LABELS = ['negative', 'neutral', 'positive'] as const;
export type Label = (typeof LABELS)[number];

/** What a backend says about one text. */
export interface Sentiment {
  label: Label;
  /** In [-1, 1]: −1 very negative for holders of the coin, +1 very positive. */
  score: number;
  /** In [0, 1]. */
  confidence: number;
  /** One sentence. */
  reason: string;
}

/** Why a backend could not score a text; the caller falls back to the baseline or dead-letters the item. */
export class SentimentError extends Error {
  override readonly name = 'SentimentError';
  readonly kind: 'timeout' | 'invalid-output' | 'unavailable' | 'bad-input';
  constructor(kind: SentimentError['kind'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

export interface SentimentBackend {
  /** `kind:model`, recorded on every signal (e.g. `local:gemma-3-270m-q4_k_m`, `lexicon:vader`). */
  readonly name: string;
  /** Changes whenever the prompt or the decoding changes, so that cached and stored results stay comparable. */
  readonly promptVersion: string;
  /** True for the lexicon baseline (and anything else that is not a language model). */
  readonly baseline: boolean;
  score(text: string, signal?: AbortSignal): Promise<Sentiment>;
  /** Loads what the first call would (weights, grammar), so that a timeout measures answers, not loading. */
  warmUp?(): Promise<void>;
  close?(): Promise<void>;
}

export const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
