import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { log } from '../../src/core/log.ts';
import { scorePrediction, unscorable } from '../../src/monitoring/score.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { type Prediction, PredictionSchema } from '../../src/schemas/prediction.ts';
import type { PredictionError } from '../../src/schemas/prediction-error.ts';
import { topics } from '../../src/schemas/topics.ts';
import { ERRORS_STREAM, IndexSink } from '../../src/sinks/index-sink.ts';
import { OpenSearchIndex } from '../../src/sinks/opensearch.ts';
import { errorDocId, errorsIndex } from '../../src/sinks/predictions-index.ts';
import { prediction as basePrediction } from '../support/factories.ts';
import { ensureOpenSearch, OPENSEARCH_URL, os } from '../support/opensearch.ts';

/**
 * The verdicts of one prediction in the index, on a real OpenSearch node: the index keeps a score over a time-out of
 * the same prediction read after it — in a later batch (a second monitor across a rebalance, a crash's re-score, a
 * replay of the topic) or in the same one — as the errors store does; a time-out scored late still replaces the
 * time-out. Before, the sink indexed the last record it read per id, and the time-out replaced the score.
 */
const PREFIX = `cc-verdicts-${process.pid}-${Date.now().toString(36)}-`;
const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);

function prediction(i: number): Prediction {
  const windowEnd = T0 + i * 60_000;
  return PredictionSchema.parse(
    basePrediction({
      exchange: 'kraken',
      pair: 'BTC/USD',
      windowEnd,
      close: 100,
      predictedReturnBps: 1.5,
      predictedClose: 100.015,
      p10: 99,
      p90: 101,
      modelName: 'cryptocast-price',
      modelVersion: 3,
      createdAt: windowEnd + 40,
      latencyMs: 40,
    }),
  );
}

const timedOut = (p: Prediction) => unscorable(p, 'target_not_closed_in_time', p.targetTs + 15 * 60_000);
const scored = (p: Prediction, actual = 101, lateMinutes = 0) =>
  scorePrediction(p, actual, p.targetTs + lateMinutes * 60_000);

async function indexed(e: PredictionError): Promise<PredictionError> {
  const got = await os<{ _source: PredictionError }>(
    'GET',
    `/${errorsIndex(PREFIX, e)}/_doc/${encodeURIComponent(errorDocId(e))}`,
  );
  return got._source;
}

describe('index sink: a prediction’s verdicts on a real OpenSearch', { timeout: 240_000 }, () => {
  const bus = new InProcessBus();
  const index = new OpenSearchIndex({
    url: OPENSEARCH_URL,
    logger: log.child({ test: 'index-sink-verdicts' }),
  });
  const sink = new IndexSink(bus, index, { prefix: PREFIX, streams: [ERRORS_STREAM as never] });
  /** Publishes `records`, one batch, and waits until the sink has indexed them. */
  const read = async (...records: PredictionError[]) => {
    await bus.publish(topics.predictionErrors, records);
    await sink.caughtUp();
  };

  before(async () => {
    ensureOpenSearch();
    await sink.start();
  });
  after(async () => {
    await sink.stop();
    await os('DELETE', `/${PREFIX}errors-*`).catch(() => {});
    await index.close();
  });

  it('a time-out read after the score, in a later batch: the score stays', async () => {
    const p = prediction(1);
    await read(scored(p));
    await read(timedOut(p));
    const doc = await indexed(scored(p));
    assert.equal(doc.status, 'scored');
    assert.equal(doc.actualClose, 101);
  });

  it('a time-out read after the score in the same batch: the score stays', async () => {
    const p = prediction(2);
    await read(scored(p), timedOut(p));
    assert.equal((await indexed(scored(p))).status, 'scored');
  });

  it('a time-out scored late (the revision) replaces the time-out', async () => {
    const p = prediction(3);
    await read(timedOut(p));
    assert.equal((await indexed(timedOut(p))).status, 'unscorable');
    await read(scored(p, 102, 30));
    const doc = await indexed(scored(p));
    assert.equal(doc.status, 'scored');
    assert.equal(doc.actualClose, 102);
  });

  it('records of one rank: the last read wins (a re-score, a time-out written again)', async () => {
    const p = prediction(4);
    await read(scored(p, 101));
    await read(scored(p, 103));
    assert.equal((await indexed(scored(p))).actualClose, 103);
    const q = prediction(5);
    await read(timedOut(q));
    await read(timedOut(q));
    assert.equal((await indexed(timedOut(q))).status, 'unscorable');
  });

  it('a document indexed before ranks were written (internal versions) is replaced by a score, then kept', async () => {
    const p = prediction(6);
    const e = timedOut(p);
    // As the sink wrote it before: a plain index operation, here three times (internal version 3).
    for (let i = 0; i < 3; i++)
      await os('PUT', `/${errorsIndex(PREFIX, e)}/_doc/${encodeURIComponent(errorDocId(e))}`, e);
    await read(scored(p));
    assert.equal((await indexed(e)).status, 'scored');
    await read(timedOut(p));
    assert.equal((await indexed(e)).status, 'scored');
  });

  it('nothing of it was dead-lettered: a record outranked is not refused', () => {
    assert.equal(sink.stats.deadLettered, 0);
    // The later batch's time-outs of the first and the last case (refused by the index), and the same batch's (not sent
    // at all: counted too, as docs/monitoring.md says).
    assert.equal(sink.stats.outranked, 3);
  });
});
