import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { registerFlatChampion, tempDirs } from '../support/embedded-run.ts';

const dir = tempDirs();

/**
 * Ctrl-C while `run --replay` waits, after its candles, for the news stage to score what the replay published: the
 * wait did not look at the stop, so an LLM that does not answer held the Ctrl-C until every item had gone to the
 * lexicon (80 s for a day of May 2022).
 */
describe('cryptocast run: a stop while the news are being scored', () => {
  it('ends without waiting for the news stage to catch up', async () => {
    const env = await registerFlatChampion(dir('cc-stop-news-registry-'));
    // An OpenAI-compatible server that takes every request and never answers.
    const llm = createServer(() => {});
    await new Promise<void>((resolve) => llm.listen(0, '127.0.0.1', resolve));
    const llmPort = (llm.address() as AddressInfo).port;
    try {
      const file = join(dir('cc-stop-news-'), 'cryptocast.duckdb');
      const run = runCli(
        [
          'run',
          '--json',
          '--port',
          '0',
          '--replay',
          '2022-05-09',
          '--store',
          `duckdb:${file}`,
          '--backend',
          'openai',
          '--base-url',
          `http://127.0.0.1:${llmPort}/v1`,
          '--model',
          'never-answers',
        ],
        env,
      );
      // Every candle of the day stored, the news rows still held for their scores.
      await run.waitFor((e) => e.event === 'stored' && e.featureRows === 2 * 1440, 120_000);
      run.child.kill('SIGINT');
      // Before: 80 s; then 18–20 s, waiting out the LLM request in flight (the scorer's 20-s limit). The stop now
      // cancels that request: 0.8–1.1 s measured, so 12 s is ample on a busy machine.
      assert.equal(await exitedWithin(run, 12_000, 'the stop while scoring news'), 130, run.stderr());
      assert.match(run.stderr(), /\[CC_ERR_INTERRUPTED\]/);
    } finally {
      llm.closeAllConnections();
      llm.close();
    }
  });
});
