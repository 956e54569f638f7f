import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { heartbeatUntilStopped } from '../../../src/runtime/kafka/subscription.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * The heartbeats a Kafka member sends while a batch holds its rejoin (`quiesce`, src/runtime/kafka/subscription.ts):
 * one a second. While the broker is away each one fails; before, each failure was a warning (30 lines for one
 * rebalance held through an outage, with the connection error's stack each time).
 */
describe('kafka: heartbeats while a batch holds the rejoin', () => {
  it('a broker away: one warning per outage, and one line when it answers again', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    // Two outages: beats 1–10 and 14–20 fail as a broker that refuses connections does; the others are answered.
    const away = (beat: number) => beat <= 10 || (beat >= 14 && beat <= 20);
    let beats = 0;
    const stop = heartbeatUntilStopped({
      intervalMs: 1,
      log: logger,
      evicted: () => assert.fail('not evicted'),
      beat: async () => {
        beats++;
        if (away(beats))
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' });
        return 'sent';
      },
    });
    try {
      await waitFor(
        'heartbeats past the second outage',
        () => beats,
        (n) => n >= 23,
        {
          timeoutMs: 30_000,
          everyMs: 5,
        },
      );
    } finally {
      await stop();
    }
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 2, `warnings: ${JSON.stringify(warnings.map((l) => l.msg))}`);
    const back = lines.filter((l) => l.level === 30 && /answer/.test(String(l.msg)));
    assert.deepEqual(
      back.map((l) => l.failures),
      [10, 7],
      'one line per outage when the broker answers again, with the heartbeats that failed',
    );
  });
});
