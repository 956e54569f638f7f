import { z } from 'zod';
import { clamp, type Sentiment, SentimentError } from './labels.ts';

/**
 * The prompt every LLM backend uses, the JSON schema its answer is constrained by, and the validation after
 * parsing. Bump PROMPT_VERSION with any change here: it is part of the cache key and of every stored signal.
 */
export const PROMPT_VERSION = 'news-sentiment-v1';

/** Longer texts are cut: a headline and its lead carry the sentiment, and latency grows with length. */
export const MAX_TEXT_CHARS = 1_200;

export const SYSTEM_PROMPT =
  'You rate crypto and financial news for traders. Decide whether the text is good news (positive), bad news ' +
  '(negative) or neither (neutral) for the price of the asset it is about. Answer in JSON with: label; score ' +
  'from -1 (very bad) to 1 (very good); confidence from 0 to 1; reason, one short sentence.';

export const userPrompt = (text: string): string => `Text: ${text}`;

/** The JSON schema the output is constrained by (grammar for local models, `response_format` for HTTP ones). */
export const SENTIMENT_JSON_SCHEMA = {
  type: 'object',
  properties: {
    label: { enum: ['negative', 'neutral', 'positive'] },
    score: { type: 'number' },
    confidence: { type: 'number' },
    reason: { type: 'string' },
  },
  required: ['label', 'score', 'confidence', 'reason'],
  additionalProperties: false,
} as const;

/** Ranges are not enforced by a grammar: checked here, after parsing. */
const ModelAnswer = z.object({
  label: z.enum(['negative', 'neutral', 'positive']),
  score: z.number().min(-1).max(1),
  confidence: z.number().min(0).max(1),
  reason: z.string().trim().min(1),
});

/** Parses and validates a model's answer; a SentimentError('invalid-output') says exactly what was wrong. */
export function parseAnswer(raw: string): Sentiment {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new SentimentError(
      'invalid-output',
      `model output is not JSON: ${JSON.stringify(raw.slice(0, 120))}`,
    );
  }
  const r = ModelAnswer.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new SentimentError(
      'invalid-output',
      `model output fails the schema at ${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
  }
  const a = r.data;
  // A label that contradicts the sign of the score is the model's mistake; the label is what it was asked first.
  const score =
    a.label === 'neutral'
      ? clamp(a.score, -0.3, 0.3)
      : a.label === 'positive'
        ? Math.abs(a.score)
        : -Math.abs(a.score);
  return { label: a.label, score, confidence: a.confidence, reason: firstSentence(a.reason) };
}

export function firstSentence(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  const m = /^(.{8,}?[.!?])(\s|$)/.exec(t);
  return (m ? m[1]! : t).slice(0, 300);
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * The text a backend sees: HTML tags and entities removed, whitespace collapsed, cut at MAX_TEXT_CHARS (on a word
 * boundary). Empty after cleaning is bad input, reported as such.
 */
export function prepareText(text: string): string {
  const t = text
    .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x?[0-9a-f]+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
        return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    })
    .replace(/\s+/g, ' ')
    .trim();
  if (t === '') throw new SentimentError('bad-input', 'empty text after removing markup');
  if (t.length <= MAX_TEXT_CHARS) return t;
  const cut = t.slice(0, MAX_TEXT_CHARS);
  const space = cut.lastIndexOf(' ');
  return space > MAX_TEXT_CHARS * 0.8 ? cut.slice(0, space) : cut;
}
