import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
import type { PredictionError } from '../../src/schemas/prediction-error.ts';
import { topics } from '../../src/schemas/topics.ts';
import { KRAKEN_REST_TRADES } from '../support/data.ts';
import { ensureKafka, KAFKA_URL, serviceLauncher, uniquePrefix } from '../support/kafka.ts';
import { assertErrorsMatch, closesOf, stumpChampionRegistry } from '../support/monitoring.ts';
import { testSchema } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The monitoring pipeline distributed: trades, candles, features, predictor and monitor as five processes on a real
 * Kafka broker, stores in a real PostgreSQL. The monitor is killed (SIGKILL) right after publishing a batch of
 * verdicts and before storing it, then restarted: the errors store ends with exactly one record per matured
 * prediction, equal to an offline computation; the topic carries every key (a re-published one is allowed).
 */

describe('monitoring on Kafka with separate processes, and a kill -9 of the monitor', () => {
  const children: ChildProcess[] = [];
  const prefix = uniquePrefix('mon');
  const schema = testSchema(prefix);
  const storeUrl = schema.url;
  before(async () => {
    await ensureKafka();
    await schema.create();
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await schema.drop();
  });

  it('every matured prediction scored exactly once in the store, as computed offline; every key on the topic', async () => {
    const closes = closesOf(KRAKEN_REST_TRADES);
    const svc = serviceLauncher(prefix, children, await stumpChampionRegistry());
    svc(['candles']);
    svc(['features']);
    svc(['predictor', '--clock', 'event', '--store', storeUrl]);
    // Killed right after publishing its first batch of verdicts, before storing it (the narrowest window).
    const crashing = svc(['monitor', '--clock', 'event', '--store', storeUrl], {
      CRYPTOCAST_FAULT: 'monitor:published:1',
    });
    const crashed = new Promise<string | null>((r) => crashing.once('exit', (_code, sig) => r(sig)));
    const trades = svc(['trades', '--source', 'replay', '--data', KRAKEN_REST_TRADES, '--speed', 'max']);
    assert.equal(await new Promise((r) => trades.once('exit', r)), 0);
    const signal = await Promise.race([
      crashed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the monitor never reached its fault point')), 180_000),
      ),
    ]);
    assert.equal(signal, 'SIGKILL', 'the monitor died at its fault point');
    svc(['monitor', '--clock', 'event', '--store', storeUrl]);

    const predictionsStore = await openPredictionsStore(storeUrl);
    const errorsStore = await openErrorsStore(storeUrl);
    try {
      const range = [Date.UTC(2025, 10, 1), Date.UTC(2025, 10, 30)] as const;
      const read = async <T>(page: (after?: number) => Promise<T[]>, end: (v: T) => number) => {
        const out: T[] = [];
        for (let after: number | undefined, p = await page(); p.length > 0; p = await page(after)) {
          out.push(...p);
          after = end(p.at(-1)!);
        }
        return out;
      };
      const predictions = await waitFor(
        'the predictions of every ready vector',
        () =>
          read<Prediction>(
            (a) => predictionsStore.history('BTC/USDT', ...range, { after: a }),
            (p) => p.windowEnd,
          ),
        (ps) => ps.length === 351,
      );
      const matured = predictions.filter((p) => closes.has(`${p.pair}|${p.targetTs}`)).length;
      const records = await waitFor(
        `${matured} error records in the store`,
        () =>
          read<PredictionError>(
            (a) => errorsStore.history('BTC/USDT', ...range, { after: a }),
            (e) => e.windowEnd,
          ),
        (es) => es.length >= matured,
      );
      assert.equal(assertErrorsMatch(predictions, records, closes), matured);
      assert.equal(records.length, matured);

      const bus = await KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
      try {
        const onTopic = await bus.readTail(topics.predictionErrors, 10_000);
        const keys = new Set(
          onTopic.map((r) => `${r.value.pair}|${r.value.windowEnd}|${r.value.modelVersion}`),
        );
        assert.equal(keys.size, matured, 'every key on the topic');
      } finally {
        await bus.close();
      }
    } finally {
      await predictionsStore.close();
      await errorsStore.close();
    }
  });
});
