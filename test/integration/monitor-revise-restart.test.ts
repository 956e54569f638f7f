import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { PredictionError } from '../../src/schemas/prediction-error.ts';
import { topics } from '../../src/schemas/topics.ts';
import { ensureKafka, KAFKA_URL, serviceLauncher, uniquePrefix } from '../support/kafka.ts';
import { candle, prediction } from '../support/monitor-minutes.ts';
import { stumpChampionRegistry } from '../support/monitoring.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * `service monitor` on Kafka under `--late-policy revise`, restarted: the predictions it reads after the restart come
 * more than a day behind the candles it had read (their closes have left the join and are read back from its store,
 * `forgottenCloses`), and their target minutes were revised after their first emission. A monitor that never stopped
 * (reading them in time) scores them against the first emission (the join ignores revisions, as the features do:
 * the unit test "predictions read more than a day behind their revised candles"), so the restarted one must too.
 */

const DAY = 1440;
/** A late trade revised minute i after its first emission: a new low and close. */
const revised = (i: number): Candle => ({ ...candle(i), low: 50 + i, close: 50 + i, revision: 1 });

describe('service monitor --late-policy revise on Kafka, restarted', () => {
  const children: ChildProcess[] = [];
  const prefix = uniquePrefix('monrev');
  let bus: KafkaBus;
  before(async () => {
    await ensureKafka();
    bus = new KafkaBus({ brokers: [KAFKA_URL.replace('kafka://', '')], topicPrefix: prefix });
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await bus.close();
  });

  const verdicts = async () =>
    (await bus.readTail<PredictionError>(topics.predictionErrors, 10_000)).map((r) => r.value);
  const stopped = (c: ChildProcess) =>
    new Promise<number | null>((resolve) => {
      if (c.exitCode !== null) resolve(c.exitCode);
      else c.once('exit', (code) => resolve(code));
      c.kill('SIGTERM');
    });

  it('scores predictions whose closes are read back from the store against the first emission, not the revision', async () => {
    const store = `duckdb:${join(scratchDir('h95-monitor-revise-'), 'store.duckdb')}`;
    const svc = serviceLauncher(prefix, children, await stumpChampionRegistry());
    const monitor = () =>
      svc(['monitor', '--clock', 'event', '--store', store], { CRYPTOCAST_LATE_POLICY: 'revise' });
    // Three days of candles; minutes 5–9 revised right after their first emission (the candle stage under revise).
    await bus.publish(
      topics.candles,
      Array.from({ length: 3 * DAY }, (_, i) =>
        i >= 5 && i < 10 ? [candle(i), revised(i)] : [candle(i)],
      ).flat(),
    );
    // A prediction whose target is the last candle: its verdict says the first monitor has read (and will store,
    // at its stop) every candle.
    const last = 3 * DAY - 6;
    await bus.publish(topics.predictions, [prediction(last)]);
    const first = monitor();
    await waitFor('the first monitor to score the last minute', verdicts, (v) => v.length === 1, {
      timeoutMs: 180_000,
      everyMs: 500,
    });
    assert.equal(await stopped(first), 0);

    // Predictions 0–4 (targets: minutes 5–9), read by a restarted monitor two days of candles behind.
    await bus.publish(
      topics.predictions,
      Array.from({ length: 5 }, (_, i) => prediction(i)),
    );
    const second = monitor();
    const got = await waitFor('the restarted monitor to score them', verdicts, (v) => v.length === 6, {
      timeoutMs: 180_000,
      everyMs: 500,
    });
    assert.equal(await stopped(second), 0);
    // Prediction i targets minute i + 5, first emitted with the close 105 + i (revised to 55 + i).
    assert.deepEqual(
      Array.from({ length: 5 }, (_, i) => {
        const e = got.find((v) => v.windowEnd === prediction(i).windowEnd);
        return `${e?.status} ${e?.reason ?? e?.actualClose}`;
      }),
      Array.from({ length: 5 }, (_, i) => `scored ${105 + i}`),
    );
  });
});
