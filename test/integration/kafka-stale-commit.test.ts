import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Admin } from '@platformatic/kafka';
import { z } from 'zod';
import type { Batch } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { defineTopic } from '../../src/runtime/topic.ts';
import { ensureKafka, KAFKA_URL } from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A member whose chunk's commit is refused because the group moved on without it (evicted: its process stalled past
 * the session timeout while the chunk was in hand, and another member took the partition and committed further) must
 * not send that commit again in the new generation: it would move the group's offset back under the new owner (whose
 * records would then be read twice). The stalling member runs in its own process (test/support/stalling-member.ts).
 */
const Msg = z.object({ v: z.literal(1), pair: z.string().min(1), n: z.number().int() });
const single = defineTopic<z.infer<typeof Msg>>({
  name: 'single',
  description: 'test numbers',
  schema: Msg,
  key: (m) => m.pair,
  partitions: 1,
});
const SESSION_MS = 6_000;

describe('a commit refused because the group moved on', () => {
  const children: ChildProcess[] = [];
  const buses: KafkaBus[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const b of buses) await b.close();
  });

  it('is not sent again after the rejoin: the new owner keeps its offset', async () => {
    await ensureKafka();
    const url = KAFKA_URL;
    const broker = url.replace(/^kafka:\/\//, '').split(',')[0]!;
    const prefix = `test.stale.${process.pid}.${randomBytes(4).toString('hex')}.`;
    const release = join(scratchDir('stale-commit-'), 'release');
    const bus = KafkaBus.connect(url, { topicPrefix: prefix, maxBatch: 10, sessionTimeoutMs: SESSION_MS });
    buses.push(bus);
    await bus.ensureTopics([single]);
    await bus.publish(
      single,
      Array.from({ length: 100 }, (_, n) => ({ v: 1 as const, pair: 'BTC/USD', n })),
    );
    const lines: string[] = [];
    const child = spawn(
      process.execPath,
      [
        join(import.meta.dirname, '..', 'support', 'stalling-member.ts'),
        url,
        prefix,
        String(SESSION_MS),
        '10',
        release,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      lines.push(...parts);
    });
    await waitFor('the first member stalled in its second chunk', () => lines.includes('stalled'), Boolean);

    const admin = new Admin({ clientId: 'stale-commit-admin', bootstrapBrokers: [broker] });
    const committed = async () => {
      const [g] = await admin.listConsumerGroupOffsets({ groups: [`${prefix}g`] });
      return g?.topics.find((t) => t.name === bus.name(single))?.partitions[0]?.committedOffset ?? -1n;
    };
    try {
      // The second member joins; the first, stalled, is evicted after its session timeout and the partition is the
      // second's, from the first's last commit (10).
      const handled: bigint[] = [];
      const second = await bus.subscribe({
        topic: single,
        group: 'g',
        service: 'second',
        handle: (batch: Batch<z.infer<typeof Msg>>) => {
          for (const r of batch.records) handled.push(r.offset);
          return undefined;
        },
      });
      await waitFor('the second member committed the whole partition', committed, (c) => c === 100n);
      assert.equal(handled[0], 10n);
      writeFileSync(release, '');
      await waitFor('the first member let go of its chunk', () => lines.includes('released'), Boolean);
      // The first member's refused commit (11..20 → 20) must not land: it rejoins, and the partition stays the
      // second's (or comes back to it from 100). Watched until the first member has applied an assignment again.
      const seen = new Set<bigint>();
      await waitFor(
        'the first member applied its new assignment',
        async () => {
          seen.add(await committed());
          return lines.filter((l) => l.startsWith('revoked') || l.startsWith('assigned')).length >= 2;
        },
        Boolean,
        { everyMs: 50, timeoutMs: 90_000 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; offsets seen: ${[...seen].join(', ')}; child: ${lines.join(' | ')}`);
      });
      for (let i = 0; i < 20; i++) seen.add(await committed());
      // Evicted, it handed nothing more of its fetch over (the second member has those records).
      const afterRelease = lines.slice(lines.indexOf('released') + 1).filter((l) => l.startsWith('handled'));
      assert.deepEqual(afterRelease, ['handled 10 19'], `child: ${lines.join(' | ')}`);
      assert.deepEqual(
        [...seen],
        [100n],
        `the group's offset moved: ${[...seen].join(', ')}; child: ${lines.join(' | ')}`,
      );
      await second.stop();
    } finally {
      await admin.close();
    }
    child.kill('SIGTERM');
  });
});
