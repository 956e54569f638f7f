import vader from 'vader-sentiment';
import type { Label, Scored, SentimentBackend } from './labels.ts';

/**
 * The lexicon baseline: VADER (Hutto & Gilbert 2014, the `vader-sentiment` port), compound score in [-1, 1], with
 * VADER's own thresholds for the label (≥ 0.05 positive, ≤ −0.05 negative). Also the fallback when an LLM fails.
 */
export class LexiconBackend implements SentimentBackend {
  readonly name = 'lexicon:vader';

  score(text: string): Scored {
    const { compound } = vader.SentimentIntensityAnalyzer.polarity_scores(text);
    const label: Label = compound >= 0.05 ? 'positive' : compound <= -0.05 ? 'negative' : 'neutral';
    return { score: compound, label };
  }
}
