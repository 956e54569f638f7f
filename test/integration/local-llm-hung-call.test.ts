import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalLlmBackend } from '../../src/sentiment/local-llm.ts';
import { SentimentScorer } from '../../src/sentiment/scorer.ts';
import { settlesWithin } from '../support/wait.ts';

/**
 * A local model call that never returns (a wedged native call), with the real runtime and weights. The backend ran the
 * model in its own process, one call after the other: the hung call kept its queue for ever, so every later call —
 * each probe of the scorer's circuit breaker included — timed out behind it until the process restarted. Now the model
 * runs in a process of its own, killed once a call outlives its deadline, and the next call loads it again and answers.
 * The hang is real: the test hook blocks the model process's thread on a lock nobody releases.
 */
describe('local backend: a model call that never returns', () => {
  it('is abandoned at its deadline, the model process replaced, and the next call answers from the model', async () => {
    const backend = new LocalLlmBackend({ threads: 1 });
    // A limit that an embedding (~0.1–1 s here, a few seconds on a busy machine) keeps well within, and a reload too.
    const scorer = new SentimentScorer({ primary: backend, cacheSize: 0, timeoutMs: 30_000 });
    try {
      const text = 'Bitcoin plunges 15% as exchange halts withdrawals';
      const before = await scorer.score(text);
      assert.equal(before.baseline, false, `the model answered first: ${before.fallback}`);
      const firstPid = backend.workerPid;
      assert.ok(firstPid, 'the model runs in a process of its own');

      backend.hangNextCallForTest();
      const hung = await settlesWithin(
        scorer.score('Ethereum exchange hacked, $200m stolen'),
        120_000,
        'the hung call',
      );
      assert.equal(hung.baseline, true);
      assert.match(hung.fallback ?? '', /^timeout/);

      // The next text: answered by the model (a new process, the weights loaded again), the same answer as before.
      const after = await settlesWithin(scorer.score(text), 120_000, 'the call after the hung one');
      assert.equal(after.baseline, false, `the model answers again: ${after.fallback}`);
      assert.deepEqual(
        { label: after.label, score: after.score, confidence: after.confidence },
        { label: before.label, score: before.score, confidence: before.confidence },
      );
      assert.ok(backend.workerPid && backend.workerPid !== firstPid, 'the wedged process was replaced');
      assert.throws(() => process.kill(firstPid, 0), { code: 'ESRCH' }, 'the wedged process is gone');
    } finally {
      await scorer.close();
    }
  });
});
