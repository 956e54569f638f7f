import { join } from 'node:path';
import { RecordedNewsSource } from '../src/news/recorded.ts';
import { InProcessBus } from '../src/runtime/in-process-bus.ts';
import type { NewsItem } from '../src/schemas/news.ts';
import { topics } from '../src/schemas/topics.ts';
import { evenSample, loadDataset, splitOf } from '../src/sentiment/datasets.ts';
import { type EvalReport, evaluate } from '../src/sentiment/evaluate.ts';
import type { SentimentBackend } from '../src/sentiment/labels.ts';
import { LexiconBackend } from '../src/sentiment/lexicon.ts';
import { LocalLlmBackend } from '../src/sentiment/local-llm.ts';
import { NewsSignalService } from '../src/sentiment/news-signal-service.ts';
import { SentimentScorer } from '../src/sentiment/scorer.ts';
import { SHARED_DATA } from '../test/support/data.ts';
import { recordBenchmark } from './report.ts';

/**
 * Sentiment backends side by side, in one run, on the same held-out examples of the three human-labelled sets:
 * accuracy, macro-F1, latency per item and throughput (headlines per second, one at a time, as the service scores
 * them); then the news-signals service itself on recorded news, with the default backend.
 *   ./bench/run sentiment [--limit N|all]   (N held-out examples spread evenly over each set; default all)
 */
const limitArg = process.argv.indexOf('--limit');
const LIMIT =
  limitArg > 0 && process.argv[limitArg + 1] !== 'all'
    ? Number(process.argv[limitArg + 1])
    : Number.POSITIVE_INFINITY;
const L = join(SHARED_DATA, 'crypto-news-sentiment/labelled');
const SETS = [
  join(L, 'CryptoLin_IE.csv'),
  join(L, 'FinancialPhraseBank-v1.0/Sentences_AllAgree.txt'),
  join(L, 'twitter-financial-news-sentiment/sent_valid.csv'),
];
const backends: { label: string; make: () => SentimentBackend }[] = [
  { label: 'lexicon (VADER)', make: () => new LexiconBackend() },
  { label: 'local, classifier (default)', make: () => new LocalLlmBackend() },
  { label: 'local, generate (JSON)', make: () => new LocalLlmBackend({ mode: 'generate' }) },
];
const generateLimit = Math.min(LIMIT, 60); // seconds per text: a smaller sample, said so with the table

const rows: { backend: string; r: EvalReport; seconds: number }[] = [];
for (const b of backends) {
  const backend = b.make();
  const scorer = new SentimentScorer({ primary: backend, cacheSize: 0, timeoutMs: 60_000 });
  await backend.warmUp?.();
  for (const file of SETS) {
    const ds = loadDataset(file);
    const n = b.label.includes('generate') ? generateLimit : LIMIT;
    // The held-out half only: the classifier's head was trained on the other half.
    const examples = evenSample(
      ds.examples.filter((e) => splitOf(e.text) === 'test'),
      n,
    );
    const t0 = performance.now();
    const r = await evaluate(`${ds.name} (test half)`, examples, scorer);
    const seconds = (performance.now() - t0) / 1000;
    rows.push({ backend: b.label, r, seconds });
    process.stdout.write(
      `${b.label.padEnd(28)} ${ds.name.padEnd(32)} n=${String(r.n).padStart(4)} acc ${(100 * r.accuracy).toFixed(1)}% F1 ${(100 * r.macroF1).toFixed(1)}% p50 ${r.latencyMs.median.toFixed(1)} ms p95 ${r.latencyMs.p95.toFixed(1)} ms ${(r.n / seconds).toFixed(1)}/s fallbacks ${r.fallbacks}\n`,
    );
  }
  await scorer.close();
}

// The service on real recorded news: items per second through news → news.signals with the default backend.
const SERVICE_ITEMS = 300;
const items: NewsItem[] = [];
await new RecordedNewsSource({
  file: join(SHARED_DATA, 'crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz'),
}).run(
  { news: (xs) => void items.push(...xs.filter((x) => x.coins.length > 0)), reject: () => {} },
  new AbortController().signal,
);
const burst = evenSample(items, SERVICE_ITEMS);
const bus = new InProcessBus();
await bus.ensureTopics([topics.news]);
const scorer = new SentimentScorer({ primary: new LocalLlmBackend(), cacheSize: 0 });
await scorer.primary.warmUp?.();
const svc = new NewsSignalService(bus, scorer, { maxLagMs: 3_600_000 });
await svc.start();
const t0 = performance.now();
await bus.publish(topics.news, burst);
await svc.caughtUp();
const serviceSeconds = (performance.now() - t0) / 1000;
await svc.stop();
await scorer.close();
const perSecond = burst.length / serviceSeconds;
const service = `news-signals service, local classifier, ${burst.length} recorded items with coins published at once: ${serviceSeconds.toFixed(1)} s, **${perSecond.toFixed(1)} items/s = ${Math.round(perSecond * 3600).toLocaleString('en-US')} items/hour** (realistic rate: hundreds per hour, e.g. 1,300/month in the recording's dense part); ${svc.stats.signals} signals, ${svc.stats.baseline} by the baseline. Beyond --max-lag (60 s by default) of backlog the service scores with the lexicon instead of falling behind.`;
process.stdout.write(`\n${service}\n`);

const pct = (x: number) => `${(100 * x).toFixed(1)}`;
const ms = (x: number) => (x < 1 ? x.toFixed(3) : x.toFixed(0));
const table =
  '| backend | set | n | accuracy % | macro-F1 % | latency p50 / p95 ms | headlines/s | baseline fallbacks |\n|---|---|---:|---:|---:|---:|---:|---:|\n' +
  rows
    .map(
      ({ backend, r, seconds }) =>
        `| ${backend} | ${r.dataset} | ${r.n} | ${pct(r.accuracy)} | ${pct(r.macroF1)} | ${ms(r.latencyMs.median)} / ${ms(r.latencyMs.p95)} | ${(r.n / seconds).toFixed(1)} | ${r.fallbacks} |`,
    )
    .join('\n');
process.stdout.write(`\n${table}\n`);
recordBenchmark(
  'sentiment',
  'News sentiment: backends on the labelled sets, and local LLM throughput',
  `\`./bench/run sentiment${Number.isFinite(LIMIT) ? ` --limit ${LIMIT}` : ''}\` — ${Number.isFinite(LIMIT) ? `the same ${LIMIT} held-out examples per set (spread evenly)` : 'every held-out example of each set'} for every backend, except the generate mode (${generateLimit} spread evenly: it takes seconds per text). One text at a time, as the news-signals service scores them, on this 2-core machine; no cache.\n\n${table}\n\n${service}`,
);
