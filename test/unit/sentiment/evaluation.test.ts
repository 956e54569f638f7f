import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evenSample, loadDataset, splitOf, trainHalves } from '../../../src/sentiment/datasets.ts';
import { evaluate, metrics } from '../../../src/sentiment/evaluate.ts';
import { LexiconBackend } from '../../../src/sentiment/lexicon.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { SHARED_DATA } from '../../support/data.ts';

const L = join(SHARED_DATA, 'crypto-news-sentiment/labelled');

describe('sentiment evaluation', () => {
  it('metrics: accuracy, per-class F1, macro-F1 and confusion, by hand', () => {
    const m = metrics(
      ['positive', 'positive', 'negative', 'neutral'],
      ['positive', 'neutral', 'negative', 'positive'],
    );
    assert.equal(m.accuracy, 0.5);
    assert.equal(m.confusion.positive.neutral, 1);
    // positive: p = 1/2, r = 1/2 → F1 .5; negative: 1; neutral: p 0 → 0. Macro = 0.5.
    assert.equal(m.perClass.positive.f1, 0.5);
    assert.equal(m.perClass.negative.f1, 1);
    assert.equal(m.perClass.neutral.f1, 0);
    assert.equal(m.macroF1, 0.5);
  });

  it('loads the labelled sets as distributed (counts from the files), reporting unusable lines', () => {
    const c = loadDataset(join(L, 'CryptoLin_IE.csv'));
    assert.equal(c.examples.length, 2683);
    assert.deepEqual(
      ['positive', 'neutral', 'negative'].map((l) => c.examples.filter((e) => e.label === l).length),
      [1356, 942, 385],
    );
    const p = loadDataset(join(L, 'FinancialPhraseBank-v1.0/Sentences_AllAgree.txt'));
    assert.deepEqual(
      ['neutral', 'positive', 'negative'].map((l) => p.examples.filter((e) => e.label === l).length),
      [1390, 570, 303],
    );
    assert.equal(p.skipped!.length, 1, 'one stray line without a label is reported');
    assert.ok(
      p.examples.some((e) => /Ã|ä|ö/.test(e.text)),
      'ISO-8859-1 decoded',
    );
    const t = loadDataset(join(L, 'twitter-financial-news-sentiment/sent_valid.csv'));
    assert.deepEqual(
      ['negative', 'positive', 'neutral'].map((l) => t.examples.filter((e) => e.label === l).length),
      [347, 475, 1566],
    );
    assert.throws(() => loadDataset('/tmp/other.csv'), /unknown dataset/);
  });

  it('the VADER lexicon baseline on CryptoLin: a real, reproducible score', async () => {
    const c = loadDataset(join(L, 'CryptoLin_IE.csv'));
    const r = await evaluate(
      c.name,
      c.examples,
      new SentimentScorer({ primary: new LexiconBackend(), cacheSize: 0 }),
    );
    assert.equal(r.n, 2683);
    assert.ok(r.accuracy > 0.35 && r.accuracy < 0.6, `accuracy ${r.accuracy}`);
    const again = await evaluate(
      c.name,
      c.examples,
      new SentimentScorer({ primary: new LexiconBackend(), cacheSize: 0 }),
    );
    assert.equal(again.macroF1, r.macroF1);
    assert.equal(r.fallbacks, 0);
  });

  it('the train/test split is by text, about half and half, identical across sets that share sentences', () => {
    const all = loadDataset(join(L, 'FinancialPhraseBank-v1.0/Sentences_AllAgree.txt')).examples;
    const p75 = loadDataset(join(L, 'FinancialPhraseBank-v1.0/Sentences_75Agree.txt')).examples;
    const test = all.filter((e) => splitOf(e.text) === 'test');
    assert.ok(Math.abs(test.length / all.length - 0.5) < 0.05, `${test.length}/${all.length}`);
    const trained = new Set(p75.filter((e) => splitOf(e.text) === 'train').map((e) => e.text.trim()));
    assert.ok(
      all.some((e) => trained.has(e.text.trim())),
      'AllAgree sentences are in 75Agree',
    );
    assert.equal(
      test.filter((e) => trained.has(e.text.trim())).length,
      0,
      'no held-out AllAgree sentence was trained on',
    );
    assert.equal(splitOf('  Bitcoin rallies '), splitOf('Bitcoin rallies'));
  });

  it('evenSample spreads over the whole set instead of taking a prefix', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i);
    assert.deepEqual(evenSample(xs, 4), [0, 25, 50, 75]);
    assert.equal(evenSample(xs, 500).length, 100);
  });

  it('trainHalves takes the non-empty train texts of each set, or N of them spread evenly, and says which', () => {
    const texts = Array.from({ length: 40 }, (_, i) => `headline number ${i}`);
    const set = {
      name: 'S',
      examples: [...texts, '   '].map((text) => ({ text, label: 'neutral' as const })),
    };
    const train = texts.filter((t) => splitOf(t) === 'train');
    assert.ok(train.length > 4 && train.length < 40);
    const all = trainHalves([set, { ...set, name: 'T' }]);
    assert.deepEqual(
      all.examples.map((e) => e.text),
      [...train, ...train],
    );
    assert.deepEqual(all.trainedOn, [`S: ${train.length} (train half)`, `T: ${train.length} (train half)`]);
    const some = trainHalves([set], 4);
    assert.deepEqual(
      some.examples.map((e) => e.text),
      evenSample(train, 4),
    );
    assert.deepEqual(some.trainedOn, [`S: 4 of ${train.length} (train half, spread evenly)`]);
  });
});
