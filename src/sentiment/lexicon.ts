import vader from 'vader-sentiment';
import type { Label, Sentiment, SentimentBackend } from './labels.ts';

/**
 * The lexicon baseline: VADER (Hutto & Gilbert 2014, the `vader-sentiment` port), compound score in [-1, 1], with
 * VADER's own thresholds for the label (≥ 0.05 positive, ≤ −0.05 negative). Also the fallback when an LLM fails.
 */
export class LexiconBackend implements SentimentBackend {
  readonly name = 'lexicon:vader';
  readonly promptVersion = 'vader-sentiment-1.1.3';
  readonly baseline = true;

  async score(text: string): Promise<Sentiment> {
    const { compound } = vader.SentimentIntensityAnalyzer.polarity_scores(text);
    const label: Label = compound >= 0.05 ? 'positive' : compound <= -0.05 ? 'negative' : 'neutral';
    return {
      label,
      score: compound,
      confidence: Math.abs(compound),
      reason: `VADER lexicon compound score ${compound.toFixed(3)}.`,
    };
  }
}
