import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { redirectLogLines } from '../../../src/core/log.ts';
import { type Sentiment, type SentimentBackend, SentimentError } from '../../../src/sentiment/labels.ts';
import { MAX_TEXT_CHARS, parseAnswer, prepareText } from '../../../src/sentiment/prompt.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { fitSoftmax, predictProba } from '../../../src/sentiment/softmax.ts';
import { scratchDir } from '../../support/scratch.ts';

/** A scripted backend: answers from a function, counts calls. */
class FakeBackend implements SentimentBackend {
  readonly baseline = false;
  calls = 0;
  readonly name: string;
  readonly promptVersion: string;
  private readonly answer: (text: string, signal?: AbortSignal) => Promise<Sentiment>;
  constructor(
    name: string,
    promptVersion: string,
    answer: (text: string, signal?: AbortSignal) => Promise<Sentiment>,
  ) {
    this.name = name;
    this.promptVersion = promptVersion;
    this.answer = answer;
  }
  score(text: string, signal?: AbortSignal): Promise<Sentiment> {
    this.calls++;
    return this.answer(text, signal);
  }
}
const positive = async (): Promise<Sentiment> => ({
  label: 'positive',
  score: 0.8,
  confidence: 0.9,
  reason: 'Good.',
});

describe('model answers are validated after parsing', () => {
  it('accepts a valid answer and keeps the first sentence of the reason', () => {
    const a = parseAnswer(
      '{"label":"negative","score":-0.6,"confidence":0.7,"reason":"Hack drains funds. More text."}',
    );
    assert.deepEqual(a, { label: 'negative', score: -0.6, confidence: 0.7, reason: 'Hack drains funds.' });
  });
  it('rejects what the grammar cannot prevent: out-of-range numbers, missing fields, non-JSON', () => {
    for (const [raw, re] of [
      ['{"label":"positive","score":3,"confidence":0.5,"reason":"x"}', /score/],
      ['{"label":"positive","score":0.3,"confidence":-1,"reason":"x"}', /confidence/],
      ['{"label":"bullish","score":0.3,"confidence":0.5,"reason":"x"}', /label/],
      ['{"label":"positive","score":0.3,"confidence":0.5,"reason":"  "}', /reason/],
      ['{"label":"positive"', /not JSON/],
    ] as const) {
      assert.throws(
        () => parseAnswer(raw),
        (e: unknown) => e instanceof SentimentError && e.kind === 'invalid-output' && re.test(e.message),
        raw,
      );
    }
  });
  it('makes the score agree with the label (the label is what the model decided first)', () => {
    assert.equal(parseAnswer('{"label":"negative","score":0.5,"confidence":1,"reason":"r"}').score, -0.5);
    assert.equal(parseAnswer('{"label":"neutral","score":0.9,"confidence":1,"reason":"r"}').score, 0.3);
  });
});

describe('text preparation', () => {
  it('strips HTML and entities, collapses whitespace', () => {
    assert.equal(
      prepareText('<p>Bitcoin&nbsp;<b>rallies</b> &amp; ETH&#39;s  fees fall</p><script>x()</script>'),
      "Bitcoin rallies & ETH's fees fall",
    );
  });
  it('cuts huge texts on a word boundary and refuses empty ones', () => {
    const t = prepareText('word '.repeat(10_000));
    assert.ok(t.length <= MAX_TEXT_CHARS && t.endsWith('word'));
    assert.throws(
      () => prepareText('  <div> </div> '),
      (e: unknown) => e instanceof SentimentError && e.kind === 'bad-input',
    );
  });
});

describe('SentimentScorer: cache → backend → baseline fallback', () => {
  it('caches by (text, model, prompt version): a repeat costs no call, another prompt version does', async () => {
    const a = new FakeBackend('fake:a', 'p1', positive);
    const s = new SentimentScorer({ primary: a });
    const first = await s.score('BTC up');
    const again = await s.score('  BTC   up '); // same text once cleaned
    assert.equal(a.calls, 1);
    assert.equal(first.cached, false);
    assert.equal(again.cached, true);
    assert.equal(again.model, 'fake:a');
    assert.notEqual(
      SentimentScorer.key('BTC up', a),
      SentimentScorer.key('BTC up', new FakeBackend('fake:a', 'p2', positive)),
    );
  });

  it('falls back to the lexicon, flagged, when the backend fails or times out; does not cache the fallback', async () => {
    const failing = new FakeBackend('fake:down', 'p1', async () => {
      throw new SentimentError('unavailable', 'server down');
    });
    const s = new SentimentScorer({ primary: failing });
    const r = await s.score('Bitcoin crashes after a terrible hack');
    assert.equal(r.baseline, true);
    assert.equal(r.model, 'lexicon:vader');
    assert.equal(r.label, 'negative');
    assert.match(r.fallback!, /unavailable: server down/);
    await s.score('Bitcoin crashes after a terrible hack');
    assert.equal(failing.calls, 2, 'a fallback is retried next time');

    const slow = new FakeBackend(
      'fake:slow',
      'p1',
      (_t, signal) =>
        new Promise((_res, rej) =>
          signal?.addEventListener('abort', () => rej(new SentimentError('timeout', 'too slow'))),
        ),
    );
    const t0 = performance.now();
    const r2 = await new SentimentScorer({ primary: slow, timeoutMs: 50 }).score('ETH is great');
    // The backend never answers: only the scorer's 50 ms timeout ends the call (a generous bound for a loaded
    // machine's timers; a hung call would never end).
    assert.ok(performance.now() - t0 < 20_000);
    assert.equal(r2.baseline, true);
    assert.match(r2.fallback!, /timeout/);
  });

  it('forced baseline (the service is behind) skips the backend; bad input is an error, not a guess', async () => {
    const a = new FakeBackend('fake:a', 'p1', positive);
    const s = new SentimentScorer({ primary: a });
    const r = await s.score('ETH up', { forceBaseline: 'behind by 90 s' });
    assert.equal(a.calls, 0);
    assert.equal(r.fallback, 'behind by 90 s');
    await assert.rejects(
      s.score('<br/>'),
      (e: unknown) => e instanceof SentimentError && e.kind === 'bad-input',
    );
  });

  it('persists the cache across restarts and ignores a torn last line', async () => {
    const file = join(scratchDir('cc-cache-'), 'cache.jsonl');
    const a = new FakeBackend('fake:a', 'p1', positive);
    await new SentimentScorer({ primary: a, cacheFile: file }).score('BTC up');
    appendFileSync(file, '{"k":"torn');
    assert.equal(readFileSync(file, 'utf8').split('\n').length, 2);
    const b = new FakeBackend('fake:a', 'p1', positive);
    const second = new SentimentScorer({ primary: b, cacheFile: file });
    const r = await second.score('BTC up');
    assert.equal(b.calls, 0);
    assert.equal(r.cached, true);
    // The next answer goes on a line of its own, not glued to the torn one (it was lost on the next start).
    await second.score('ETH up');
    const c = new FakeBackend('fake:a', 'p1', positive);
    const third = new SentimentScorer({ primary: c, cacheFile: file });
    assert.equal((await third.score('ETH up')).cached, true);
    assert.equal(c.calls, 0);
  });

  it('a cache file that stops taking writes (full disk): one warning naming it, answers still used', async () => {
    const file = join(scratchDir('cc-cache-'), 'cache.jsonl');
    const a = new FakeBackend('fake:a', 'p1', positive);
    const scorer = new SentimentScorer({ primary: a, cacheFile: file });
    // Every write to /dev/full fails with ENOSPC, as on a full disk; linked after the constructor read the file.
    symlinkSync('/dev/full', file);
    const lines: string[] = [];
    redirectLogLines((l) => lines.push(l));
    try {
      for (const text of ['BTC up', 'ETH up', 'SOL up', 'XRP up', 'ADA up']) {
        const r = await scorer.score(text);
        assert.equal(r.model, 'fake:a', 'the answer is used');
        assert.equal(r.fallback, undefined);
      }
      const again = await scorer.score('BTC up');
      assert.equal(again.cached, true, 'still cached in memory');
    } finally {
      redirectLogLines(undefined);
    }
    assert.equal(a.calls, 5);
    assert.equal(lines.length, 1, lines.join(''));
    const warning = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(warning.level, 40);
    assert.equal(warning.file, file);
    assert.match(String(warning.msg), /no longer cached/);
    assert.match(String(warning.reason), /ENOSPC|no space left/i);
    assert.equal(JSON.stringify(warning).includes('    at '), false, 'no stack');
  });
});

describe('softmax head', () => {
  it('learns a separable three-class problem and returns probabilities', () => {
    const xs: number[][] = [];
    const ys: number[] = [];
    for (let i = 0; i < 300; i++) {
      const y = i % 3;
      xs.push([y * 2 + Math.sin(i) * 0.4, 5 - y + Math.cos(i) * 0.4]);
      ys.push(y);
    }
    const m = fitSoftmax(xs, ys, 3, { iterations: 500 });
    let correct = 0;
    for (let i = 0; i < xs.length; i++) {
      const p = predictProba(m, xs[i]!);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-9);
      if (p.indexOf(Math.max(...p)) === ys[i]) correct++;
    }
    assert.ok(correct / xs.length > 0.95, `accuracy ${correct / xs.length}`);
  });
});
