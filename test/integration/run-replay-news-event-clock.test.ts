import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { recordedNewsFile } from '../../src/data/locations.ts';
import { NewsDeduplicator } from '../../src/news/dedup.ts';
import { RecordedNewsSource } from '../../src/news/recorded.ts';
import type { NewsItem } from '../../src/schemas/news.ts';
import { exitedWithin, runCli } from '../support/cli.ts';
import { tempDirs } from '../support/embedded-run.ts';

const dir = tempDirs();
const DAY = Date.UTC(2022, 4, 9);

/** The day's recorded news items that name a coin (the ones scored), in fetch order, deduplicated as the replay does. */
async function itemsWithCoins(): Promise<NewsItem[]> {
  const items: NewsItem[] = [];
  const dedup = new NewsDeduplicator();
  await new RecordedNewsSource({ file: recordedNewsFile()! }).run(
    {
      news: async (batch) => {
        for (const n of batch)
          if (n.fetchedAt >= DAY && n.fetchedAt < DAY + 86_400_000 && dedup.accept(n)) items.push(n);
      },
      reject: async () => {},
    },
    new AbortController().signal,
  );
  return items.filter((n) => n.coins.length > 0).sort((a, b) => a.fetchedAt - b.fetchedAt);
}

/**
 * `run --replay` with the real local model and an empty cache: an item's wait is measured in replay time (the wait it
 * would have had live). On the wall clock a replay at full speed publishes the day's news in seconds, the model fell
 * behind, and with a 1-s limit the lexicon scored most of them — though live, an item fetched a minute or more after
 * the one before it waits for nothing.
 */
it('run --replay: news items are scored by the LLM unless they would have waited live past --news-max-lag', async () => {
  const items = await itemsWithCoins();
  // Items fetched less than a minute after the one before: live, they may wait for the model (up to its time per
  // text, 0.2–1 s here, more on a busy machine) — the only ones the lexicon may score with a 1-s limit.
  const close = items.filter((n, i) => i > 0 && n.fetchedAt - items[i - 1]!.fetchedAt < 60_000).length;
  assert.ok(
    items.length - close >= 10,
    `the day has ${items.length} items with a coin, ${close} close together`,
  );
  const run = runCli(
    [
      'run',
      '--port',
      '0',
      '--replay',
      '2022-05-09',
      '--news-max-lag',
      '1s',
      '--store',
      `duckdb:${join(dir('cc-news-event-clock-'), 'cryptocast.duckdb')}`,
    ],
    {
      CRYPTOCAST_REGISTRY: dir('cc-news-event-clock-registry-'),
      CRYPTOCAST_SENTIMENT_CACHE: join(dir('cc-news-event-clock-cache-'), 'cache.jsonl'),
    },
  );
  assert.equal(await exitedWithin(run, 600_000, 'the day replay with its news'), 0, run.stderr());
  const done = /done: .*news [\d,]+ → [\d,]+ scored \(([\d,]+) by the lexicon: behind\)/.exec(run.stderr());
  assert.ok(done, run.stderr());
  const byLexicon = Number(done[1]!.replace(/,/g, ''));
  assert.ok(
    byLexicon <= close,
    `${byLexicon} of ${items.length} items by the lexicon for their wait; at most ${close} could have waited live`,
  );
});
