import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { scorePrediction, unscorable } from '../../../src/monitoring/score.ts';
import { partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { type Prediction, PredictionSchema } from '../../../src/schemas/prediction.ts';
import { PredictionErrorSchema } from '../../../src/schemas/prediction-error.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { IndexSink } from '../../../src/sinks/index-sink.ts';
import type { DocumentIndex, IndexOp, IndexResult } from '../../../src/sinks/opensearch.ts';
import {
  ERROR_MAPPINGS,
  errorDocId,
  PREDICTION_MAPPINGS,
  predictionDocId,
  predictionsIndex,
  predictionsIsmPolicy,
} from '../../../src/sinks/predictions-index.ts';
import { collectValues } from '../../support/collect.ts';
import { prediction as basePrediction } from '../../support/factories.ts';
import { waitFor } from '../../support/wait.ts';

/** A fake search engine: documents by index and id, write counts, and a script of failures. */
class FakeIndex implements DocumentIndex {
  readonly docs = new Map<string, Record<string, unknown>>();
  writes = 0;
  calls = 0;
  /** Called per bulk request: throw to fail the request, or return a per-document override. */
  script: (call: number, op: IndexOp) => IndexResult | 'throw' | undefined = () => undefined;
  setups = 0;

  async bulk(ops: readonly IndexOp[]): Promise<IndexResult[]> {
    const call = ++this.calls;
    if (ops.some((op) => this.script(call, op) === 'throw')) throw new Error('connect ECONNREFUSED');
    return ops.map((op) => {
      const r = this.script(call, op);
      if (r !== undefined && r !== 'throw') return r;
      this.writes++;
      this.docs.set(`${op.index}/${op.id}`, op.doc);
      return { ok: true };
    });
  }
  async setup(): Promise<void> {
    this.setups++;
  }
  async close(): Promise<void> {}
}

const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);
function prediction(i: number, pair = i % 2 ? 'ETH/USD' : 'BTC/USD'): Prediction {
  const windowEnd = T0 + i * 60_000;
  return PredictionSchema.parse(
    basePrediction({
      exchange: 'kraken',
      pair,
      windowEnd,
      close: 100 + i,
      predictedReturnBps: 1.5,
      predictedClose: 100.015 + i,
      p10: 99 + i,
      p90: 101 + i,
      modelName: 'cryptocast-price',
      modelVersion: 3,
      createdAt: windowEnd + 40,
      latencyMs: 40,
    }),
  );
}

const noWait = async () => {};

/** The project's wait on a condition (its deadline leaves a loaded machine room), polled every 5 ms. */
const until = async (ok: () => boolean, what: string): Promise<void> => {
  await waitFor(what, ok, (done) => done, { everyMs: 5 });
};

describe('index sink', () => {
  it('a time-out and its revision in one batch: one document, the revision, whatever a retry does', async () => {
    const bus = new InProcessBus();
    const index = new FakeIndex();
    // The first request refuses the time-out for now (429): retried alone, it would land after its revision.
    index.script = (call, op) =>
      call === 1 && (op.doc as { status?: string }).status === 'unscorable'
        ? { ok: false, status: 429, reason: 'busy' }
        : undefined;
    const sink = new IndexSink(bus, index, { prefix: 'cc-', sleep: noWait });
    await sink.start();
    const p = prediction(1);
    const timedOut = unscorable(p, 'target_not_closed_in_time', p.targetTs + 16 * 60_000);
    const scored = scorePrediction(p, 102, p.targetTs + 30 * 60_000);
    await bus.publish(topics.predictionErrors, [timedOut, scored]);
    await sink.caughtUp();
    assert.equal(index.docs.get(`cc-errors-2026.12/${errorDocId(scored)}`)?.status, 'scored');
    assert.equal(index.writes, 1, 'one document written');
    await sink.stop();
  });

  it('maps every field of the prediction schema explicitly, and ids/indices come from the prediction', () => {
    assert.deepEqual(
      Object.keys(PREDICTION_MAPPINGS.properties).sort(),
      Object.keys(PredictionSchema.shape).sort(),
    );
    const p = prediction(0);
    assert.equal(predictionDocId(p), `BTC/USD|${T0}|cryptocast-price|3`);
    assert.equal(predictionsIndex('cc-', p), 'cc-predictions-2026.12');
    assert.equal(predictionsIndex('cc-', { windowEnd: Date.UTC(2027, 0, 1) }), 'cc-predictions-2027.01');
    const policy = predictionsIsmPolicy('cc-', 30) as {
      policy: { states: { name: string; transitions: { state_name: string }[] }[]; default_state: string };
    };
    const names = new Set(policy.policy.states.map((s) => s.name));
    assert.ok(names.has(policy.policy.default_state));
    for (const s of policy.policy.states) for (const t of s.transitions) assert.ok(names.has(t.state_name));
  });

  it('indexes the error records too: their own month index, the monitor’s key as id, every field mapped', async () => {
    assert.deepEqual(
      Object.keys(ERROR_MAPPINGS.properties).sort(),
      Object.keys(PredictionErrorSchema.shape).sort(),
    );
    const bus = new InProcessBus();
    const index = new FakeIndex();
    const sink = new IndexSink(bus, index, { prefix: 'cc-', sleep: noWait });
    await sink.start();
    const p = prediction(1);
    const scored = PredictionErrorSchema.parse({
      v: 1,
      status: 'scored',
      exchange: p.exchange,
      pair: p.pair,
      windowEnd: p.windowEnd,
      modelName: p.modelName,
      modelVersion: p.modelVersion,
      horizonMs: p.horizonMs,
      targetTs: p.targetTs,
      close: p.close,
      predictedClose: p.predictedClose,
      p10: p.p10,
      p90: p.p90,
      actualClose: 102,
      error: p.predictedClose - 102,
      absError: Math.abs(p.predictedClose - 102),
      pctError: ((p.predictedClose - 102) / 102) * 100,
      persistenceAbsError: Math.abs(p.close - 102),
      directionHit: true,
      directionTie: false,
      inBand: true,
      scoredAt: p.targetTs + 1_000,
      latenessMs: 1_000,
      reason: null,
    });
    await bus.publish(topics.predictions, [p]);
    await bus.publish(topics.predictionErrors, [scored]);
    await until(() => sink.stats.indexed === 2, 'both indexed');
    assert.ok(index.docs.has(`cc-predictions-2026.12/${predictionDocId(p)}`));
    assert.deepEqual(index.docs.get(`cc-errors-2026.12/${errorDocId(scored)}`), scored);
    assert.equal(errorDocId(scored), `kraken|ETH/USD|${p.windowEnd}|cryptocast-price|3`);
    await sink.stop();
  });

  it('retries a failing bulk request with back-off, committing nothing until it succeeds; writes each once', async () => {
    const bus = new InProcessBus();
    const index = new FakeIndex();
    index.script = (call) => (call <= 3 ? 'throw' : undefined);
    const waits: number[] = [];
    const sink = new IndexSink(bus, index, {
      backoff: { initialMs: 100, maxMs: 250 },
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await sink.start();
    // One pair: one partition, one batch retried.
    const ps = Array.from({ length: 20 }, (_, i) => prediction(i, 'BTC/USD'));
    await bus.publish(topics.predictions, ps);
    await until(() => sink.stats.indexed === 20, 'indexed');
    assert.equal(index.docs.size, 20);
    assert.equal(index.writes, 20, 'each document written once');
    assert.ok(sink.stats.retries >= 3);
    assert.deepEqual(waits.slice(0, 3), [100, 200, 250], 'exponential, capped');
    await sink.stop();
    assert.equal(index.setups, 2, 'the predictions and the errors templates');
  });

  it('retries only the documents refused with 429/5xx; dead-letters those refused for themselves', async () => {
    const bus = new InProcessBus();
    const index = new FakeIndex();
    const bad = predictionDocId(prediction(4));
    const busy = predictionDocId(prediction(6));
    index.script = (call, op) => {
      if (op.id === bad)
        return { ok: false, status: 400, reason: 'mapper_parsing_exception: failed to parse' };
      if (op.id === busy && call === 1)
        return { ok: false, status: 429, reason: 'es_rejected_execution_exception' };
      return undefined;
    };
    const dead = await collectValues(bus, topics.dlq, 't');
    const sink = new IndexSink(bus, index, { sleep: noWait });
    await sink.start();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 10 }, (_, i) => prediction(i)),
    );
    await until(() => sink.stats.indexed === 9 && dead.length === 1, 'indexed and dead-lettered');
    assert.equal(index.writes, 9);
    assert.equal(dead[0]!.kind, 'index-refused');
    assert.match(dead[0]!.reason, /OpenSearch 400: mapper_parsing_exception/);
    assert.equal(JSON.parse(dead[0]!.payload).windowEnd, prediction(4).windowEnd);
    await sink.stop();
  });

  it('retries documents refused by a write block (403 cluster_block_exception): it clears, they are not dead-lettered', async () => {
    // An index write block (index.blocks.write, a read-only index or cluster) answers each document 403; it is lifted
    // by the operator or when disk is freed, after which the same documents are taken.
    const bus = new InProcessBus();
    const index = new FakeIndex();
    index.script = (call) =>
      call === 1
        ? {
            ok: false,
            status: 403,
            reason:
              'cluster_block_exception: index [cryptocast-predictions-2026.12] blocked by: [FORBIDDEN/8/index write (api)];',
          }
        : undefined;
    const dead = await collectValues(bus, topics.dlq, 't');
    const sink = new IndexSink(bus, index, { sleep: noWait });
    await sink.start();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 4 }, (_, i) => prediction(i)),
    );
    await until(
      () => sink.stats.indexed + sink.stats.deadLettered === 4,
      'every document indexed or dead-lettered',
    );
    assert.equal(sink.stats.deadLettered, 0);
    assert.equal(dead.length, 0);
    assert.equal(index.docs.size, 4);
    await sink.stop();
  });

  it('holds a batch at most maxHoldMs, then hands it back uncommitted; stopping mid-retry commits nothing', async () => {
    const bus = new InProcessBus();
    const index = new FakeIndex();
    let down = true;
    index.script = () => (down ? 'throw' : undefined);
    const sink = new IndexSink(bus, index, { maxHoldMs: 0, sleep: (ms) => sleep(Math.min(ms, 5)) });
    await sink.start();
    await bus.publish(topics.predictions, [prediction(0), prediction(2)]);
    await until(() => index.calls >= 4, 'several attempts');
    assert.equal(sink.stats.indexed, 0);
    down = false;
    await until(() => sink.stats.indexed === 2, 'indexed once back');
    assert.equal(index.writes, 2);
    await sink.stop();

    // A sink stopped while OpenSearch is down leaves its batch to the next one, which writes it.
    const bus2 = new InProcessBus();
    const index2 = new FakeIndex();
    index2.script = () => 'throw';
    const first = new IndexSink(bus2, index2, {
      sleep: (ms, signal) => sleep(ms, undefined, { signal }).catch(() => {}),
    });
    await first.start();
    await bus2.publish(topics.predictions, [prediction(0)]);
    await until(() => index2.calls >= 1, 'first attempt');
    await first.stop();
    index2.script = () => undefined;
    const second = new IndexSink(bus2, index2, { sleep: noWait });
    await second.start();
    await until(() => second.stats.indexed === 1, 'indexed by the next sink');
    assert.equal(index2.writes, 1);
    await second.stop();
  });

  it('a partition taken from the sink mid-retry (another member joins) is let go at once, and its new owner writes it', async () => {
    const bus = new InProcessBus();
    // OpenSearch away for the first sink, for good: only the partition's loss ends its retries (the sleep between
    // attempts waits for its signal alone, not the 60-s hold).
    const away = new FakeIndex();
    away.script = () => 'throw';
    const first = new IndexSink(bus, away, {
      sleep: (_ms, signal) =>
        new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })),
    });
    await first.start();
    // A pair on an odd partition: the one the second member gets (round-robin over the two).
    const pair = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD'].find(
      (p) => partitionFor(p, topics.predictions.partitions) % 2 === 1,
    )!;
    await bus.publish(topics.predictions, [prediction(0, pair)]);
    await until(() => away.calls >= 1, 'the first sink to try, and wait to retry');
    const up = new FakeIndex();
    const second = new IndexSink(bus, up, { sleep: noWait });
    try {
      await second.start();
      await waitFor(
        'the new owner to index the batch',
        () => second.stats.indexed,
        (n) => n === 1,
        {
          timeoutMs: 10_000,
          everyMs: 20,
        },
      );
      assert.equal(first.stats.indexed, 0);
      assert.equal(up.writes, 1);
    } finally {
      // The stop also ends a retry that the partition's loss did not.
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
